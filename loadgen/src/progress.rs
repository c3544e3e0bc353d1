//! Progress of a long command on stderr, for the load tools and the binary's other long
//! commands (audit verify and export, rebuilds). On a terminal it is an `indicatif` bar (a
//! spinner when the total is unknown) redrawn in place. Elsewhere — a CI log, a test reading
//! stderr — `indicatif` draws nothing, so a plain line is written every so often instead, the
//! same words as the bar: `velka seed: 12/30 (85 requests/s)`.
//!
//! Results never go through here: they are written on stdout by the command itself.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

/// How a progress line counts: `12/30 events (85/s)`.
#[derive(Clone, Debug)]
struct Counts {
    /// What is counted, after the numbers (`events`, `s`); may be empty.
    unit: Arc<str>,
    /// Whether the average rate follows.
    rate: bool,
}

impl Counts {
    fn write(&self, pos: u64, len: Option<u64>, elapsed: Duration, out: &mut dyn std::fmt::Write) {
        let _ = match len {
            Some(len) => write!(out, "{pos}/{len}"),
            None => write!(out, "{pos}"),
        };
        if !self.unit.is_empty() {
            let _ = write!(out, " {}", self.unit);
        }
        if self.rate {
            let per_s = pos as f64 / elapsed.as_secs_f64().max(1e-3);
            let _ = write!(out, " ({per_s:.0}/s)");
        }
    }
}

/// A progress bar on stderr, or plain lines where stderr is not a terminal.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    counts: Counts,
    /// The writer of plain lines, when the bar is not drawn.
    plain: Option<PlainLines>,
    /// Whether the total is known, so a bar (not a spinner) is drawn.
    drawn_as_bar: AtomicBool,
}

#[derive(Debug)]
struct PlainLines {
    /// Dropped (or sent to) to stop the writer.
    stop: mpsc::Sender<()>,
    writer: JoinHandle<()>,
}

impl Progress {
    /// Progress of `prefix` (`velka seed`) towards `total` steps (unknown: `None`); where the
    /// bar cannot be drawn, a plain line every `plain_every`.
    pub fn new(prefix: &str, total: Option<u64>, plain_every: Duration) -> Self {
        Self::counting(prefix, total, "", false, plain_every)
    }

    /// [`Progress::new`] whose count names its `unit` (`events`) and, with `rate`, is followed
    /// by the average rate.
    pub fn counting(
        prefix: &str,
        total: Option<u64>,
        unit: &str,
        rate: bool,
        plain_every: Duration,
    ) -> Self {
        let counts = Counts {
            unit: Arc::from(unit),
            rate,
        };
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr())
            .with_prefix(prefix.to_owned())
            .with_style(style(total.is_some(), &counts));
        let plain = if bar.is_hidden() {
            Some(PlainLines::start(bar.clone(), counts.clone(), plain_every))
        } else {
            bar.enable_steady_tick(Duration::from_millis(200));
            None
        };
        Self {
            bar,
            counts,
            plain,
            drawn_as_bar: AtomicBool::new(total.is_some()),
        }
    }

    /// Steps done so far (a log position, a count; a negative one reads as 0).
    pub fn set_position(&self, position: impl TryInto<u64>) {
        self.bar
            .set_position(position.try_into().unwrap_or_default());
    }

    /// `delta` more steps done.
    pub fn inc(&self, delta: u64) {
        self.bar.inc(delta);
    }

    /// The total, once known or when it moves.
    pub fn set_length(&self, total: impl TryInto<u64>) {
        self.bar.set_length(total.try_into().unwrap_or_default());
        if !self.drawn_as_bar.swap(true, Ordering::Relaxed) {
            self.bar.set_style(style(true, &self.counts));
        }
    }

    /// Words after the count (`(85 requests/s)`, `at position 1200`); empty for none.
    pub fn set_message(&self, message: impl AsRef<str>) {
        self.bar.set_message(after_counts(message.as_ref()));
    }

    /// A line above the bar (or among the plain lines).
    pub fn println(&self, line: impl AsRef<str>) {
        if self.plain.is_some() {
            eprintln!("{}", line.as_ref());
        } else {
            self.bar.println(line);
        }
    }

    /// Done: the bar stays, showing where it ended; without one, a last plain line says it.
    pub fn finish(mut self) {
        if self.stop_plain_lines() {
            eprintln!("{}", line(&self.bar, &self.counts));
        } else {
            self.bar.finish();
        }
    }

    /// Done: the bar goes (the command says what it did itself); no last plain line.
    pub fn finish_and_clear(mut self) {
        self.stop_plain_lines();
        self.bar.finish_and_clear();
    }

    /// Stops the plain line writer; whether there was one.
    fn stop_plain_lines(&mut self) -> bool {
        match self.plain.take() {
            Some(plain) => {
                let _ = plain.stop.send(());
                let _ = plain.writer.join();
                true
            }
            None => false,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop_plain_lines();
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

impl PlainLines {
    /// A thread that writes `bar`'s line every `every` until stopped.
    fn start(bar: ProgressBar, counts: Counts, every: Duration) -> Self {
        let (stop, stopped) = mpsc::channel::<()>();
        let writer = std::thread::spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                eprintln!("{}", line(&bar, &counts));
            }
        });
        Self { stop, writer }
    }
}

/// The bar's look: `velka seed: [#####>----] 12/30 (85 requests/s)`, or with a spinner for the
/// bar while the total is unknown.
fn style(bar: bool, counts: &Counts) -> ProgressStyle {
    let template = if bar {
        "{prefix}: [{bar:30}] {counts}{msg}"
    } else {
        "{prefix}: {spinner} {counts}{msg}"
    };
    let counts = counts.clone();
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "counts",
            move |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                counts.write(state.pos(), state.len(), state.elapsed(), out)
            },
        )
        .progress_chars("#>-")
}

/// `message` as it follows the count: a parenthesis after a space, other words after a comma.
fn after_counts(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else if message.starts_with('(') {
        format!(" {message}")
    } else {
        format!(", {message}")
    }
}

/// How long the rest will take at the average pace so far, as `ETA 1h 02m`, `ETA 3m 20s` or
/// `ETA 12s`: `done` of `total` steps took `elapsed`. `None` before the first step or once done.
pub fn eta(done: u64, total: u64, elapsed: Duration) -> Option<String> {
    if done == 0 || done >= total {
        return None;
    }
    let left = elapsed.as_secs_f64() * (total - done) as f64 / done as f64;
    let left = left.round() as u64;
    Some(match (left / 3600, left / 60 % 60, left % 60) {
        (0, 0, s) => format!("ETA {s}s"),
        (0, m, s) => format!("ETA {m}m {s:02}s"),
        (h, m, _) => format!("ETA {h}h {m:02}m"),
    })
}

/// The plain line: the bar's words without the bar.
fn line(bar: &ProgressBar, counts: &Counts) -> String {
    let mut text = format!("{}: ", bar.prefix());
    counts.write(bar.position(), bar.length(), bar.elapsed(), &mut text);
    text.push_str(&bar.message());
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hidden(prefix: &'static str, total: Option<u64>) -> ProgressBar {
        ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden()).with_prefix(prefix)
    }

    #[test]
    fn the_eta_is_the_rest_at_the_pace_so_far() {
        let eta = |done, total, s| eta(done, total, Duration::from_secs(s));
        assert_eq!(eta(0, 100, 5), None);
        assert_eq!(eta(100, 100, 5), None);
        assert_eq!(eta(50, 100, 12).as_deref(), Some("ETA 12s"));
        assert_eq!(eta(25, 100, 100).as_deref(), Some("ETA 5m 00s"));
        assert_eq!(eta(1, 100, 100).as_deref(), Some("ETA 2h 45m"));
    }

    #[test]
    fn a_plain_line_says_what_the_bar_shows() {
        let counts = Counts {
            unit: Arc::from(""),
            rate: false,
        };
        let bar = hidden("velka seed", Some(30));
        bar.set_position(30);
        bar.set_message(after_counts("(85 requests/s)"));
        assert_eq!(line(&bar, &counts), "velka seed: 30/30 (85 requests/s)");
    }

    #[test]
    fn a_count_without_a_total_names_its_unit_and_rate() {
        let counts = Counts {
            unit: Arc::from("events"),
            rate: true,
        };
        let bar = hidden("velka: exporting", None);
        bar.set_position(1200);
        bar.set_message(after_counts("at position 7"));
        let text = line(&bar, &counts);
        assert!(
            text.starts_with("velka: exporting: 1200 events ("),
            "{text}"
        );
        assert!(text.ends_with("/s), at position 7"), "{text}");
    }
}
