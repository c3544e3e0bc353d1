//! The house rules that the compiler does not check, checked on the source tree (in the manner
//! of rust-analyzer's tidy test): every crate and module opens with a `//!` comment saying what
//! it is for; the crates depend on each other only in the allowed direction; no set of source
//! files imports each other in a loop; only the event store reads the `events` table (the
//! auditors' tools excepted, on purpose: ARCHITECTURE.md says why) and only its follower module
//! the checkpoints.
//!
//! Each check is a function over plain data, with a test that feeds it a broken tree and sees
//! it fail, and a test that runs it over this workspace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The workspace root (this crate is `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The workspace's member crates: (folder name, manifest text).
fn crates() -> Vec<(String, String)> {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap_or_default();
    let members = manifest
        .split("members = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_default();
    members
        .split(',')
        .map(|member| member.trim().trim_matches('"').to_owned())
        .filter(|member| !member.is_empty())
        .map(|member| {
            let text = std::fs::read_to_string(root().join(&member).join("Cargo.toml"))
                .unwrap_or_default();
            (member, text)
        })
        .collect()
}

/// The crates named in a manifest's `[dependencies]` (not dev- or build-dependencies).
fn dependencies(manifest: &str) -> BTreeSet<String> {
    let mut in_section = false;
    let mut found = BTreeSet::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == "[dependencies]";
            continue;
        }
        if !in_section || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = line
            .split(['=', '.', ' '])
            .next()
            .unwrap_or_default()
            .trim();
        if !name.is_empty() {
            found.insert(name.to_owned());
        }
    }
    found
}

/// The `.rs` files under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// A source file: its path relative to the workspace, and its text.
struct Source {
    path: String,
    text: String,
}

/// Every production source file (`<crate>/src/**/*.rs`) of the workspace.
fn sources() -> Vec<Source> {
    let root = root();
    crates()
        .into_iter()
        .flat_map(|(name, _)| rust_files(&root.join(&name).join("src")))
        .map(|path| Source {
            path: path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string(),
            text: std::fs::read_to_string(&path).unwrap_or_default(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The checks: each answers the breaches it finds.

/// Files whose first non-blank line is not a `//!` comment.
fn missing_headers(sources: &[Source]) -> Vec<String> {
    sources
        .iter()
        .filter(|source| {
            !source
                .text
                .lines()
                .find(|line| !line.trim().is_empty())
                .is_some_and(|line| line.trim_start().starts_with("//!"))
        })
        .map(|source| source.path.clone())
        .collect()
}

/// What no crate may depend on, and what some crates must not.
fn dependency_breaches(crates: &[(String, BTreeSet<String>)]) -> Vec<String> {
    // Crates that do IO or run an async runtime: the domain stays pure.
    const IO: &[&str] = &[
        "tokio",
        "sqlx",
        "reqwest",
        "axum",
        "async-nats",
        "hyper",
        "tower",
        "event-store",
        "futures",
        "metrics",
        "tracing",
    ];
    // The binary and the load tools: nothing depends on them.
    const TOP: &[&str] = &["velka", "loadgen"];
    let mut breaches = Vec::new();
    for (name, dependencies) in crates {
        for dependency in dependencies {
            if name == "domain" && IO.contains(&dependency.as_str()) {
                breaches.push(format!("domain depends on {dependency}, an IO crate"));
            }
            if name == "query-api" && (dependency == "command-api" || dependency == "fixtures") {
                breaches.push(format!("query-api depends on {dependency}"));
            }
            if TOP.contains(&dependency.as_str()) && name != "velka" && name != "tests" {
                breaches.push(format!("{name} depends on {dependency}"));
            }
        }
    }
    breaches
}

/// Production files outside the allowed crates that read `table` in SQL.
fn table_readers(sources: &[Source], table: &str, allowed: &[&str]) -> Vec<String> {
    let patterns = [format!("FROM {table}"), format!("JOIN {table}")];
    sources
        .iter()
        .filter(|source| !allowed.iter().any(|prefix| source.path.starts_with(prefix)))
        .filter(|source| {
            let code = strip_tests(&source.text);
            patterns.iter().any(|pattern| {
                code.match_indices(pattern.as_str()).any(|(at, _)| {
                    // A whole word: `FROM events ` or `FROM events\n`, not `FROM events_view`.
                    code[at + pattern.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
                })
            })
        })
        .map(|source| source.path.clone())
        .collect()
}

/// A file's text without its `#[cfg(test)]` module (tests may look at anything).
fn strip_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// A file's code without its comments (a doc link names a module, but imports nothing).
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) if !line[..at].contains('"') => &line[..at],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module path of a source file within its crate: `domain/src/account/mod.rs` →
/// (`domain`, [`account`]); `lib.rs` and `main.rs` are the crate root ([]).
fn module_of(path: &str) -> Option<(String, Vec<String>)> {
    let (krate, rest) = path.split_once("/src/")?;
    let rest = rest.strip_suffix(".rs")?;
    let mut parts: Vec<String> = rest.split('/').map(str::to_owned).collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    if parts == ["lib"] || parts == ["main"] {
        parts.clear();
    }
    Some((krate.to_owned(), parts))
}

/// The files each file imports from its own crate (`use crate::…`, `use super::…`, and
/// `crate::…::` paths in code), as file paths. An import of a module's own ancestor or
/// descendant is not counted: a module and the modules it declares are one room.
fn imports(sources: &[Source]) -> BTreeMap<String, BTreeSet<String>> {
    let mut by_module: BTreeMap<(String, Vec<String>), String> = BTreeMap::new();
    for source in sources {
        if let Some(module) = module_of(&source.path) {
            by_module.insert(module, source.path.clone());
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in sources {
        let Some((krate, here)) = module_of(&source.path) else {
            continue;
        };
        let targets = graph.entry(source.path.clone()).or_default();
        let code = without_comments(strip_tests(&source.text));
        for path in referenced_paths(&code) {
            // Resolve `crate::a::b::Name` / `super::b::Name` to the deepest existing module.
            let mut segments: Vec<String> = Vec::new();
            let mut rest = path.as_slice();
            match rest.first().map(String::as_str) {
                Some("crate") => rest = &rest[1..],
                Some("super") => {
                    segments = here.clone();
                    while rest.first().is_some_and(|s| s == "super") {
                        segments.pop();
                        rest = &rest[1..];
                    }
                }
                _ => continue,
            }
            let mut target = None;
            let mut candidate = segments.clone();
            if let Some(file) = by_module.get(&(krate.clone(), candidate.clone())) {
                target = Some((candidate.clone(), file.clone()));
            }
            for segment in rest {
                candidate.push(segment.clone());
                match by_module.get(&(krate.clone(), candidate.clone())) {
                    Some(file) => target = Some((candidate.clone(), file.clone())),
                    None => break,
                }
            }
            let Some((module, file)) = target else {
                continue;
            };
            let related = module.starts_with(&here) || here.starts_with(&module);
            if !related {
                targets.insert(file);
            }
        }
    }
    graph
}

/// The `crate::…` and `super::…` paths a file names (in `use` statements, with their braces
/// expanded one level, and inline).
fn referenced_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let mut at = 0;
    while let Some(found) = code[at..].find(['c', 's']) {
        let start = at + found;
        at = start + 1;
        let before = code[..start].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &code[start..];
        if !(rest.starts_with("crate::") || rest.starts_with("super::")) {
            continue;
        }
        let end = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
        let mut segments: Vec<String> = rest[..end]
            .split("::")
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        // `use crate::a::{b, c::D}`: each branch is a path of its own.
        if rest[end..].starts_with('{') {
            let inner = rest[end + 1..].split('}').next().unwrap_or_default();
            for branch in inner.split(',') {
                let branch: Vec<String> = branch
                    .trim()
                    .split("::")
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty() && s != "self")
                    .collect();
                let mut path = segments.clone();
                path.extend(branch);
                paths.push(path);
            }
        } else {
            if segments
                .last()
                .is_some_and(|s| s.chars().next().is_some_and(char::is_uppercase))
            {
                segments.pop();
            }
            paths.push(segments);
        }
    }
    paths
}

/// The sets of files that import each other in a loop (strongly connected components of more
/// than one file), each sorted.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    // Tarjan's algorithm, iterative enough for a few hundred files.
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        on_stack: BTreeSet<&'a str>,
        stack: Vec<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        state.index.insert(node, state.next);
        state.low.insert(node, state.next);
        state.next += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        if let Some(targets) = state.graph.get(node) {
            for target in targets {
                let target = target.as_str();
                if !state.index.contains_key(target) {
                    visit(state, target);
                    let low = state.low[node].min(state.low[target]);
                    state.low.insert(node, low);
                } else if state.on_stack.contains(target) {
                    let low = state.low[node].min(state.index[target]);
                    state.low.insert(node, low);
                }
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            while let Some(top) = state.stack.pop() {
                state.on_stack.remove(top);
                component.push(top.to_owned());
                if top == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        on_stack: BTreeSet::new(),
        stack: Vec::new(),
        next: 0,
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}

// ---------------------------------------------------------------------------------------------
// This workspace.

#[test]
fn every_crate_and_module_opens_with_what_it_is_for() {
    let sources = sources();
    assert!(sources.len() > 100, "found only {} files", sources.len());
    let missing = missing_headers(&sources);
    assert!(missing.is_empty(), "no `//!` header: {missing:#?}");
}

#[test]
fn the_crates_depend_on_each_other_in_the_allowed_direction() {
    let crates: Vec<(String, BTreeSet<String>)> = crates()
        .into_iter()
        .map(|(name, manifest)| (name, dependencies(&manifest)))
        .collect();
    assert!(crates.iter().any(|(name, _)| name == "domain"));
    let breaches = dependency_breaches(&crates);
    assert!(breaches.is_empty(), "{breaches:#?}");
}

#[test]
fn no_files_import_each_other_in_a_loop() {
    let graph = imports(&sources());
    let found = circles(&graph);
    assert!(found.is_empty(), "import circles: {found:#?}");
}

#[test]
fn only_the_event_store_reads_the_log_and_only_its_follower_the_checkpoints() {
    let sources = sources();
    // The auditors' tools read the table as stored on purpose (ARCHITECTURE.md); the load
    // tools bulk-load and time it; the black-box tests' harness checks what was appended.
    let readers = table_readers(
        &sources,
        "events",
        &[
            "event-store/",
            "audit/",
            "loadgen/",
            "velka/src/bench",
            "tests/",
        ],
    );
    assert!(readers.is_empty(), "read the events table: {readers:#?}");
    let readers = table_readers(
        &sources,
        "follower_checkpoints",
        &["event-store/src/follower/"],
    );
    assert!(readers.is_empty(), "read the checkpoints: {readers:#?}");
}

// ---------------------------------------------------------------------------------------------
// Each check catches what it is for.

fn source(path: &str, text: &str) -> Source {
    Source {
        path: path.to_owned(),
        text: text.to_owned(),
    }
}

#[test]
fn a_module_without_a_header_is_named() {
    let sources = [
        source("a/src/lib.rs", "//! A.\n\nmod b;\n"),
        source("a/src/b.rs", "\nuse std::fmt;\n"),
    ];
    assert_eq!(missing_headers(&sources), ["a/src/b.rs"]);
}

#[test]
fn a_dependency_against_the_direction_is_named() {
    let crates = vec![
        (
            "domain".to_owned(),
            BTreeSet::from(["serde".to_owned(), "sqlx".to_owned()]),
        ),
        (
            "query-api".to_owned(),
            BTreeSet::from(["fixtures".to_owned()]),
        ),
        ("payments".to_owned(), BTreeSet::from(["velka".to_owned()])),
        ("tests".to_owned(), BTreeSet::from(["velka".to_owned()])),
    ];
    assert_eq!(
        dependency_breaches(&crates),
        [
            "domain depends on sqlx, an IO crate",
            "query-api depends on fixtures",
            "payments depends on velka",
        ]
    );
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nserde.workspace = true\n\
                    sqlx = { workspace = true }\n\n[dev-dependencies]\ntokio.workspace = true\n";
    assert_eq!(
        dependencies(manifest),
        BTreeSet::from(["serde".to_owned(), "sqlx".to_owned()])
    );
}

#[test]
fn two_files_that_import_each_other_are_a_circle_and_a_parent_and_child_are_not() {
    let sources = [
        source("a/src/lib.rs", "//! A.\nmod x;\nmod y;\nmod z;\n"),
        source("a/src/x.rs", "use crate::y::Thing;\n"),
        source(
            "a/src/y.rs",
            "use crate::{x::other, z};\npub struct Thing;\n",
        ),
        source("a/src/z/mod.rs", "mod w;\nuse w::Inner;\n"),
        source("a/src/z/w.rs", "use super::Outer;\n"),
    ];
    let graph = imports(&sources);
    assert!(graph["a/src/x.rs"].contains("a/src/y.rs"));
    assert!(graph["a/src/y.rs"].contains("a/src/x.rs"));
    assert_eq!(
        circles(&graph),
        [vec!["a/src/x.rs".to_owned(), "a/src/y.rs".to_owned()]]
    );
}

#[test]
fn a_read_of_a_table_outside_its_owner_is_named() {
    let sources = [
        source("event-store/src/log.rs", "\"SELECT * FROM events\""),
        source("query-api/src/x.rs", "\"SELECT 1 FROM events WHERE\""),
        source("query-api/src/y.rs", "\"SELECT 1 FROM events_view\""),
        source(
            "query-api/src/z.rs",
            "fn f() {}\n#[cfg(test)]\nmod tests { \"SELECT 1 FROM events\" }",
        ),
    ];
    assert_eq!(
        table_readers(&sources, "events", &["event-store/"]),
        ["query-api/src/x.rs"]
    );
}

/// The binary only wires: its production code (each file up to its `#[cfg(test)]` module) stays
/// within 2,500 lines; what a command does lives in a library.
#[test]
fn the_binary_keeps_to_wiring() {
    let dir = root().join("velka/src");
    let mut lines = 0;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("velka/src") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("source");
            let production = text
                .lines()
                .take_while(|line| line.trim() != "#[cfg(test)]")
                .count();
            files.push((production, path));
            lines += production;
        }
    }
    files.sort();
    assert!(
        lines <= 2_500,
        "velka/src has {lines} production lines (at most 2,500): {files:?}"
    );
}
