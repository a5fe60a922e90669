//! Whether this machine has the programs a scenario requires, in the versions it requires.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use crate::scenario::{extract_version, version_probe, ProbeStream, Requirement, Scenario, Version};

/// What a probe found for one program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// Not on PATH.
    Missing,
    /// On PATH; its version when the probe printed one.
    Present(Option<Version>),
}

static CACHE: Mutex<BTreeMap<String, Found>> = Mutex::new(BTreeMap::new());

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Probes `program` once per process (cached): present or not, and its version.
pub fn probe(program: &str) -> Found {
    if let Some(f) = CACHE.lock().unwrap_or_else(|e| e.into_inner()).get(program) {
        return f.clone();
    }
    let found = if !on_path(program) {
        Found::Missing
    } else {
        let p = version_probe(program);
        let out = run_bounded(&p.program, &p.args, Duration::from_secs(10));
        let text = match p.stream {
            ProbeStream::Stdout => out.0,
            ProbeStream::Stderr => out.1,
            ProbeStream::Both => format!("{}\n{}", out.0, out.1),
        };
        Found::Present(extract_version(&text))
    };
    CACHE.lock().unwrap_or_else(|e| e.into_inner()).insert(program.to_string(), found.clone());
    found
}

/// Runs a probe with a time limit, killing it (by its id) if it hangs.
fn run_bounded(program: &str, args: &[String], limit: Duration) -> (String, String) {
    let Ok(mut child) = std::process::Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() else {
        return (String::new(), String::new());
    };
    let deadline = std::time::Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            _ => {
                let _ = child.kill();
                break;
            }
        }
    }
    match child.wait_with_output() {
        Ok(o) => (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(_) => (String::new(), String::new()),
    }
}

/// The version a command prints (on standard output or error), such as a program's own
/// `--version`: `"missing"` when it cannot run, `"present (version unknown)"` when it prints none.
pub fn command_version(argv: &[String]) -> String {
    let Some((program, args)) = argv.split_first() else { return "unknown".into() };
    let (out, err) = run_bounded(program, args, Duration::from_secs(10));
    if out.is_empty() && err.is_empty() {
        return "missing".into();
    }
    match extract_version(&format!("{out}\n{err}")) {
        Some(v) => v.to_string(),
        None => "present (version unknown)".into(),
    }
}

/// Why the requirements are not met, or `None` when they are.
pub fn unmet(reqs: &[Requirement]) -> Option<String> {
    let mut why = Vec::new();
    for r in reqs {
        match probe(&r.program) {
            Found::Missing => why.push(format!("{} is not installed (scripts/setup.sh installs the known ones)", r.program)),
            Found::Present(v) if r.version.is_any() => {
                let _ = v;
            }
            Found::Present(Some(v)) if r.version.matches(&v) => {}
            Found::Present(Some(v)) => why.push(format!("{} {v} does not satisfy {}", r.program, r.version)),
            Found::Present(None) => why.push(format!("{}: could not read its version to check {}", r.program, r.version)),
        }
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// The versions found for a scenario's requirements, for the environment facts of a run.
pub fn versions(reqs: &[Requirement]) -> BTreeMap<String, String> {
    reqs.iter()
        .map(|r| {
            let v = match probe(&r.program) {
                Found::Missing => "missing".to_string(),
                Found::Present(Some(v)) => v.to_string(),
                Found::Present(None) => "present (version unknown)".to_string(),
            };
            (r.program.clone(), v)
        })
        .collect()
}

/// Why `scenario`'s trials cannot run on this machine, or `None` when they can: its `[requires]`
/// and the programs it needs without naming them (strace for a service with `trace = true`, the
/// program of each `[build.<name>]`, such as javac where only a JRE is installed).
/// `nslab run` and the `cargo test` trials both decide with this, so they agree.
pub fn unmet_for(scenario: &Scenario) -> Option<String> {
    let traced = scenario.services.iter().any(|s| s.trace);
    let implied = (traced && probe("strace") == Found::Missing).then(|| "strace is not installed (a service has trace = true)".to_string());
    let builders = scenario.builds.iter().filter_map(|b| {
        let program = b.command.first()?.source();
        let present = if program.contains('/') { std::path::Path::new(program).is_file() } else { on_path(program) };
        (!present).then(|| format!("{program} is not installed (build {} runs it)", b.name))
    });
    let why: Vec<String> = unmet(&scenario.requires).into_iter().chain(implied).chain(builders).collect();
    (!why.is_empty()).then(|| format!("requirement not met: {}", why.join("; ")))
}

/// The environment variable that turns a missing requirement into a failure (CI sets it).
pub const REQUIRE_ALL_VAR: &str = "NSLAB_REQUIRE_ALL";

/// Whether `NSLAB_REQUIRE_ALL` asks for every requirement to be met: `1`, `true`, `yes`, `on`,
/// `y` or `t` in any case. Unset, empty, `0`, `false`, `no`, `off` (or anything else) do not.
pub fn require_all_from_env() -> bool {
    std::env::var(REQUIRE_ALL_VAR).ok().as_deref().and_then(parse_bool).unwrap_or(false)
}

/// Reads a yes/no setting the way `NSLAB_REQUIRE_ALL` is read; `None` for anything else.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" | "t" => Some(true),
        "0" | "false" | "no" | "off" | "n" | "f" | "" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bool;

    #[test]
    fn require_all_values() {
        for v in ["1", "true", "TRUE", "yes", "On", "y", "t", " 1 "] {
            assert_eq!(parse_bool(v), Some(true), "{v:?}");
        }
        for v in ["0", "false", "no", "OFF", "n", "f", ""] {
            assert_eq!(parse_bool(v), Some(false), "{v:?}");
        }
        assert_eq!(parse_bool("2"), None);
        assert_eq!(parse_bool("maybe"), None);
    }
}
