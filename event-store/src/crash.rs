//! Crash switches, for fault tests: named instants in the code at which the process dies on
//! purpose, as if SIGKILLed there, when the switch for that instant is armed.
//!
//! The binary arms them from `VELKA_CRASH_AT` (a comma-separated list of names); nothing is
//! armed otherwise, and an unarmed [`point`] costs one read of an empty list. A test starts the
//! server with one point armed, drives it to that instant, sees it die, restarts it unarmed and
//! checks that nothing was lost or left behind. The first armed point the process reaches ends it.
//!
//! A name armed as `pause:<point>` instead stops the process there, once, as if SIGSTOPped
//! ([`pause_point`]): a test of fenced ownership lets another process take over meanwhile,
//! then continues it (SIGCONT) and sees what it does with what it held.

use std::sync::Mutex;
use std::sync::OnceLock;

static ARMED: OnceLock<Mutex<Vec<String>>> = OnceLock::new();

/// The exit status of a process that died at a crash point (what SIGKILL gives, 128 + 9).
pub const EXIT_STATUS: i32 = 137;

/// Arms the crash points named in `points` (empty names are ignored). Called once at start.
pub fn arm<I: IntoIterator<Item = String>>(points: I) {
    let armed: Vec<String> = points
        .into_iter()
        .map(|point| point.trim().to_owned())
        .filter(|point| !point.is_empty())
        .collect();
    if !armed.is_empty() {
        tracing::warn!(
            ?armed,
            "crash points armed: this process will die on purpose"
        );
    }
    let slot = ARMED.get_or_init(|| Mutex::new(Vec::new()));
    let mut slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    *slot = armed;
}

/// Dies here, at once and without cleaning up, if `name` is armed.
pub fn point(name: &str) {
    let Some(armed) = ARMED.get() else {
        return;
    };
    let hit = {
        let armed = armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        armed.iter().any(|point| point == name)
    };
    if hit {
        eprintln!("velka: crash point {name}: dying on purpose");
        std::process::exit(EXIT_STATUS);
    }
}

/// Stops the whole process here (SIGSTOP, as a test would send it), once, if `pause:<name>` is
/// armed; it goes on when continued (SIGCONT).
pub fn pause_point(name: &str) {
    let Some(armed) = ARMED.get() else {
        return;
    };
    let hit = {
        let mut armed = armed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let wanted = format!("pause:{name}");
        match armed.iter().position(|point| *point == wanted) {
            Some(at) => {
                armed.swap_remove(at);
                true
            }
            None => false,
        }
    };
    if hit {
        eprintln!("velka: pause point {name}: stopping on purpose until continued");
        // The process stops while `kill` runs; the wait for it returns once continued.
        let _ = std::process::Command::new("kill")
            .arg("-STOP")
            .arg(std::process::id().to_string())
            .status();
    }
}
