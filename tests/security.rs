//! nslab as root on a machine shared with a hostile local user (uid 65534, `nobody`, plays the
//! attacker): planted links and files, directories the attacker owns, another state root's
//! `gc`, two `nslab up` of one name at once, runs killed with -9. Each trial reproduces one
//! finding of issue 12 and asserts the refusal or the fix, with its exact text.
//!
//! Every trial needs real root (an attacker of another uid, named namespaces); as any other
//! user they are ignored (failed under `NSLAB_REQUIRE_ALL=1`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// The attacker: uid and gid of `nobody`.
const EVIL: u32 = 65534;

fn main() -> std::process::ExitCode {
    let mut args = Arguments::from_args();
    // Named namespaces are mounts of the host, checked around the binary: one at a time.
    args.test_threads = Some(1);
    let trials = vec![
        root_trial("failed-up-log/a-planted-link-and-file-in-tmpdir-are-not-touched", &["python3", "setpriv"], planted_up_log),
        root_trial("artifacts-root/owned-by-another-user-is-refused", &["setpriv"], root_of_other_user),
        root_trial("artifacts-root/a-symbolic-link-is-refused", &["setpriv"], root_is_link),
        root_trial("artifacts-root/inside-a-directory-another-user-owns-is-refused", &["setpriv"], root_under_other_user),
        root_trial("artifacts-root/a-non-root-default-another-user-took-is-refused", &["setpriv"], default_taken),
        root_trial("artifacts/kept-evidence-is-owner-only-and-unreadable-to-others", &["setpriv"], kept_owner_only),
        root_trial("gc/another-state-dir-leaves-running-labs-alone", &[], gc_other_state_dir),
        root_trial("gc/non-root-is-refused-root-state-and-leaves-root-labs", &["setpriv"], gc_non_root),
        root_trial("up/two-at-once-exactly-one-wins-the-other-exits-2", &[], two_ups),
        root_trial("gc/artifacts-of-a-killed-run-are-removed-kept-evidence-is-not", &[], gc_dead_run_artifacts),
    ];
    nslab_tests::run_checking_host(&args, trials)
}

/// A trial that needs real root (not rootless mode) and `programs`.
fn root_trial(name: &str, programs: &[&str], f: fn() -> Result<(), String>) -> Trial {
    let mut missing = nslab_tests::kernel_unavailable();
    if missing.is_none() && !nix::unistd::geteuid().is_root() {
        missing = Some("needs real root (an attacker of another uid)".into());
    }
    if missing.is_none() {
        let absent: Vec<&str> = programs.iter().copied().filter(|p| !nslab_tests::have(p)).collect();
        if !absent.is_empty() {
            missing = Some(format!("needs {} on PATH", absent.join(", ")));
        }
    }
    let require = nslab_tests::require_all();
    if let (Some(why), false) = (&missing, require) {
        eprintln!("note: {name} is ignored: {why}");
    }
    let ignored = missing.is_some() && !require;
    Trial::test(name, move || match missing {
        Some(why) => Err(Failed::from(format!("required: {why} (NSLAB_REQUIRE_ALL=1)"))),
        None => f().map_err(Failed::from),
    })
    .with_ignored_flag(ignored)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap_or("")
}

/// A machine in miniature: `shared` is a world-writable sticky directory (as /tmp), `root`
/// a directory of root's that nobody can traverse into nothing else but `shared`.
struct World {
    top: tempfile::TempDir,
}

impl World {
    fn new() -> Result<World, String> {
        let top = tempfile::Builder::new().prefix("nslab-sec-").tempdir().map_err(|e| e.to_string())?;
        std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
        let shared = top.path().join("shared");
        std::fs::create_dir(&shared).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).map_err(|e| e.to_string())?;
        let root = top.path().join("root");
        std::fs::create_dir(&root).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
        Ok(World { top })
    }

    fn shared(&self) -> PathBuf {
        self.top.path().join("shared")
    }

    fn root(&self) -> PathBuf {
        self.top.path().join("root")
    }

    /// `nslab ARGS` as root, with the state and artifacts in root's directory unless `env`
    /// says otherwise.
    fn nslab(&self, args: &[&str], env: &[(&str, &Path)]) -> Result<Output, String> {
        let mut c = Command::new(nslab_tests::nslab_bin()?);
        c.args(args)
            .env("NSLAB_STATE_DIR", self.root().join("state"))
            .env("NSLAB_ARTIFACTS_DIR", self.root().join("artifacts"))
            .env("TMPDIR", self.shared())
            .env("NO_COLOR", "1")
            .env_remove("NSLAB_REQUIRE_ALL")
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().map_err(|e| format!("nslab {}: {e}", args.join(" ")))
    }

    /// `ARGV` as the attacker.
    fn as_evil(&self, argv: &[&str], env: &[(&str, &Path)]) -> Result<Output, String> {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", &EVIL.to_string(), "--regid", &EVIL.to_string(), "--clear-groups", "--"])
            .args(argv)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.shared())
            .env("TMPDIR", self.shared())
            .env("NO_COLOR", "1")
            .current_dir(self.shared())
            .stdin(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().map_err(|e| format!("setpriv {}: {e}", argv.join(" ")))
    }

    /// Writes `name` in root's directory (the scenario files root runs).
    fn scenario(&self, name: &str, toml: &str) -> Result<PathBuf, String> {
        let p = self.root().join(name);
        std::fs::write(&p, toml).map_err(|e| e.to_string())?;
        Ok(p)
    }
}

/// A directory (or link) made by the attacker.
fn give_to_evil(p: &Path) -> Result<(), String> {
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        p,
        Some(nix::unistd::Uid::from_raw(EVIL)),
        Some(nix::unistd::Gid::from_raw(EVIL)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| format!("chown {}: {e}", p.display()))
}

fn evil_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(EVIL)).ok().flatten().map(|u| format!("{} (uid {EVIL})", u.name)).unwrap_or(format!("uid {EVIL}"))
}

fn refusal(path: &Path, why: &str, var: &str) -> String {
    let example = if var == "NSLAB_ARTIFACTS_DIR" { "mkdir -m 0700 ~/nslab-artifacts" } else { "mkdir -m 0700 ~/.nslab-state" };
    format!(
        "refusing to use {}: {why}, so another user could read, replace or redirect nslab's files; set {var} to a directory of your own (for example {example})",
        path.display()
    )
}

const FAILING_UP: &str = "description = \"a service that exits at once\"\nprofiles = [\"dual-stack\"]\n[hosts.h]\n[services.bad]\nhost = \"h\"\ncommand = [\"python3\", \"-c\", \"import sys; print('boom-evidence', file=sys.stderr); sys.exit(3)\"]\nready = { listening = \"tcp:8000\" }\n";

/// A scenario that fails (its service exits 0, 1 is expected): its artifacts are kept.
const FAILING_RUN: &str = "description = \"a service whose exit code is not the one expected\"\nprofiles = [\"dual-stack\"]\ntimeout = \"60s\"\n[hosts.h]\n[services.t]\nhost = \"h\"\ncommand = [\"sh\", \"-c\", \"echo secret-output\"]\n[[expect]]\nkind = \"exit\"\nservice = \"t\"\ncode = 1\n";

/// Issue 12, 1: a failed `nslab up` copied its log to `$TMPDIR/nslab-up-NAME.log`, following
/// a planted link (overwriting a root-only file) or writing into the attacker's own file.
fn planted_up_log() -> Result<(), String> {
    let w = World::new()?;
    let victim = w.root().join("victim");
    std::fs::write(&victim, "root's secret\n").map_err(|e| e.to_string())?;
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).map_err(|e| e.to_string())?;
    let scen = w.scenario("broken.toml", FAILING_UP)?;
    let pid = std::process::id();
    let (link_lab, file_lab) = (format!("s{pid}l"), format!("s{pid}f"));
    let link = w.shared().join(format!("nslab-up-{link_lab}.log"));
    std::os::unix::fs::symlink(&victim, &link).map_err(|e| e.to_string())?;
    give_to_evil(&link)?;
    let planted = w.shared().join(format!("nslab-up-{file_lab}.log"));
    let out = w.as_evil(&["touch", s(&planted)], &[])?;
    ensure!(out.status.success(), "the attacker could not plant {}: {}", planted.display(), text(&out.stderr));
    for lab in [&link_lab, &file_lab] {
        let out = w.nslab(&["up", s(&scen), "--name", lab], &[])?;
        let err = text(&out.stderr);
        ensure!(!out.status.success() && err.contains("before the lab was up"), "up of a failing scenario: {err}");
        // The log is kept where only root can reach it, and the message says where.
        let kept_in = w.root().join("artifacts").join("up").join(lab);
        let line = err.lines().find(|l| l.starts_with("nslab: log kept in ")).ok_or(format!("no 'log kept in' line: {err}"))?;
        let kept = PathBuf::from(line.trim_start_matches("nslab: log kept in "));
        ensure!(kept.parent() == Some(kept_in.as_path()), "the log was kept in {}, expected a file in {}", kept.display(), kept_in.display());
        let md = std::fs::symlink_metadata(&kept).map_err(|e| format!("{}: {e}", kept.display()))?;
        ensure!(md.is_file() && md.uid() == 0 && md.mode() & 0o777 == 0o600, "kept log {}: uid {} mode {:o}", kept.display(), md.uid(), md.mode() & 0o777);
        ensure!(std::fs::read_to_string(&kept).is_ok_and(|t| t.contains("boom-evidence")), "the kept log lacks the service's output");
        // 0700, or 0711 on the way to a service's directory: never listable by others.
        let dir_mode = std::fs::metadata(&kept_in).map_err(|e| e.to_string())?.mode() & 0o777;
        ensure!(dir_mode == 0o700 || dir_mode == 0o711, "{} has mode {dir_mode:o}, expected 700 or 711", kept_in.display());
    }
    ensure!(std::fs::read_to_string(&victim).is_ok_and(|t| t == "root's secret\n"), "the root-only file behind the planted link was written");
    let vm = std::fs::metadata(&victim).map_err(|e| e.to_string())?.mode() & 0o777;
    ensure!(vm == 0o600, "the root-only file's mode became {vm:o}");
    let pm = std::fs::metadata(&planted).map_err(|e| e.to_string())?;
    ensure!(pm.len() == 0 && pm.uid() == EVIL, "the attacker's planted file received {} bytes", pm.len());
    let mut names: Vec<String> =
        std::fs::read_dir(w.shared()).map_err(|e| e.to_string())?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    let mut want = vec![format!("nslab-up-{file_lab}.log"), format!("nslab-up-{link_lab}.log")];
    want.sort();
    ensure!(names == want, "nslab wrote into the shared directory: {names:?}");
    Ok(())
}

/// Runs `scen` as root with `NSLAB_ARTIFACTS_DIR=art` and returns its standard error, which
/// must hold `expected`.
fn run_refused(w: &World, art: &Path, expected: &str) -> Result<(), String> {
    let scen = w.scenario("fail.toml", FAILING_RUN)?;
    let out = w.nslab(&["run", s(&scen)], &[("NSLAB_ARTIFACTS_DIR", art)])?;
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    ensure!(!out.status.success(), "nslab run with artifacts in {} succeeded:\n{all}", art.display());
    ensure!(all.contains(expected), "nslab run did not refuse as expected; expected:\n  {expected}\nfound:\n{all}");
    Ok(())
}

/// Issue 12, 2: an artifacts root another user owns (the attacker made the predictable name
/// first) was used; root's files then lived in the attacker's directory.
fn root_of_other_user() -> Result<(), String> {
    let w = World::new()?;
    let art = w.shared().join("nslab-artifacts");
    let out = w.as_evil(&["mkdir", "-m", "0777", s(&art)], &[])?;
    ensure!(out.status.success(), "the attacker could not make {}: {}", art.display(), text(&out.stderr));
    run_refused(&w, &art, &refusal(&art, &format!("it is owned by {}, not by root (uid 0) who runs nslab", evil_name()), "NSLAB_ARTIFACTS_DIR"))?;
    let left: Vec<_> = std::fs::read_dir(&art).map_err(|e| e.to_string())?.flatten().map(|e| e.path()).collect();
    ensure!(left.is_empty(), "nslab wrote into the attacker's directory: {left:?}");
    Ok(())
}

/// Issue 12, 2: an artifacts root that is a link (to wherever its owner likes).
fn root_is_link() -> Result<(), String> {
    let w = World::new()?;
    let target = w.root().join("elsewhere");
    std::fs::create_dir(&target).map_err(|e| e.to_string())?;
    let art = w.shared().join("nslab-artifacts");
    std::os::unix::fs::symlink(&target, &art).map_err(|e| e.to_string())?;
    give_to_evil(&art)?;
    run_refused(&w, &art, &refusal(&art, &format!("it is a symbolic link owned by {}, who can point it anywhere", evil_name()), "NSLAB_ARTIFACTS_DIR"))?;
    ensure!(std::fs::read_dir(&target).map_err(|e| e.to_string())?.next().is_none(), "nslab wrote through the link");
    Ok(())
}

/// Issue 12, 2: a root of root's own inside a directory the attacker owns (who can rename it
/// and put a directory of theirs, or a link, in its place).
fn root_under_other_user() -> Result<(), String> {
    let w = World::new()?;
    let evil = w.shared().join("evil");
    let out = w.as_evil(&["mkdir", "-m", "0755", s(&evil)], &[])?;
    ensure!(out.status.success(), "mkdir as the attacker: {}", text(&out.stderr));
    let art = evil.join("art");
    std::fs::create_dir(&art).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&art, std::fs::Permissions::from_mode(0o700)).map_err(|e| e.to_string())?;
    run_refused(&w, &art, &refusal(&evil, &format!("it is owned by {}, not by root (uid 0) who runs nslab", evil_name()), "NSLAB_ARTIFACTS_DIR"))
}

/// Issue 12, 2, for a user without root: the default root `/var/tmp/nslab-UID` is a name any
/// user can take first (as tmux's `/tmp/tmux-UID`); taken, it is refused, never used.
fn default_taken() -> Result<(), String> {
    let w = World::new()?;
    let taken = PathBuf::from(format!("/var/tmp/nslab-{EVIL}"));
    ensure!(!taken.exists(), "{} exists already; this trial makes it itself (remove it to run the trial)", taken.display());
    // Another user (here root, a user the victim is not) takes the name first.
    std::fs::create_dir(&taken).map_err(|e| e.to_string())?;
    struct Rm(PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _rm = Rm(taken.clone());
    std::fs::set_permissions(&taken, std::fs::Permissions::from_mode(0o755)).map_err(|e| e.to_string())?;
    let scen = w.shared().join("fail.toml");
    std::fs::write(&scen, FAILING_RUN).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&scen, std::fs::Permissions::from_mode(0o644)).map_err(|e| e.to_string())?;
    let out = w.as_evil(&[s(&nslab_tests::nslab_bin()?), "run", s(&scen)], &[])?;
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    // Rootless: the machine's root shows as the overflow uid, and the caller as uid 0.
    let want = refusal(
        &taken,
        &format!("it is owned by root or another user (unmapped in nslab's user namespace) (mode 0755) and {} (outside nslab's user namespace) may not create shared in it", evil_name()),
        "NSLAB_ARTIFACTS_DIR",
    );
    ensure!(!out.status.success() && all.contains(&want), "nslab run as uid {EVIL} with its default root taken; expected:\n  {want}\nfound:\n{all}");
    ensure!(std::fs::read_dir(&taken).map_err(|e| e.to_string())?.next().is_none(), "nslab wrote into the taken directory");
    Ok(())
}

/// Every directory and file under `dir`, with its mode.
fn tree(dir: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        if md.is_dir() {
            stack.extend(std::fs::read_dir(&p).into_iter().flatten().flatten().map(|e| e.path()));
        }
        out.push((p, md));
    }
    out
}

/// Issue 12, 3: artifacts were world-readable (0755 directories, 0644 files).
fn kept_owner_only() -> Result<(), String> {
    let w = World::new()?;
    // The artifacts root where the attacker can reach it: only nslab's own modes protect it.
    let art = w.top.path().join("art");
    let scen = w.scenario("fail.toml", FAILING_RUN)?;
    let out = w.nslab(&["run", s(&scen)], &[("NSLAB_ARTIFACTS_DIR", &art)])?;
    ensure!(!out.status.success(), "the failing scenario passed: {}", text(&out.stdout));
    let entries = tree(&art);
    let log = entries
        .iter()
        .find(|(p, md)| md.is_file() && std::fs::read_to_string(p).is_ok_and(|t| t.contains("secret-output")))
        .map(|(p, _)| p.clone())
        .ok_or(format!("the service's output is not kept under {}:\n{}{}", art.display(), text(&out.stdout), text(&out.stderr)))?;
    // What another user can reach: an entry below a directory others cannot search is out of
    // their reach whatever its own mode (the host's copies of /tmp and /run keep the machine's
    // 1777 and 0755 inside the owner-only `fs/`, as programs in the host need them).
    let modes: std::collections::HashMap<&Path, u32> = entries.iter().map(|(p, md)| (p.as_path(), md.mode() & 0o7777)).collect();
    let reachable = |p: &Path| p.ancestors().skip(1).take_while(|a| a.starts_with(&art)).all(|a| modes.get(a).is_some_and(|m| m & 0o001 != 0));
    let mut open = Vec::new();
    for (p, md) in &entries {
        let mode = md.mode() & 0o777;
        if !reachable(p) {
            continue;
        }
        // The per-host /etc files are 0644 (lab programs that drop privileges read them through
        // their bind mounts), inside owner-only directories.
        let etc = p.parent().and_then(Path::file_name).is_some_and(|n| n == "etc");
        // Directories: 0700, or 0711 on the way to a service's directory (a program that
        // switches users must reach it): searchable, never listable.
        let ok = if md.is_dir() { mode == 0o700 || mode == 0o711 } else { mode & 0o077 == 0 || (etc && mode == 0o644) };
        if !ok || md.uid() != 0 {
            open.push(format!("{} (uid {}, mode {mode:o})", p.display(), md.uid()));
        }
    }
    ensure!(open.is_empty(), "artifacts other users can read:\n{}", open.join("\n"));
    let cat = w.as_evil(&["cat", s(&log)], &[])?;
    ensure!(!cat.status.success() && text(&cat.stderr).contains("Permission denied"), "the attacker read {}: {}", log.display(), text(&cat.stdout));
    let ls = w.as_evil(&["ls", s(&art)], &[])?;
    ensure!(!ls.status.success() && text(&ls.stderr).contains("Permission denied"), "the attacker listed {}: {}", art.display(), text(&ls.stdout));
    Ok(())
}

/// Named namespaces of lab `lab` in /run/netns.
fn named(lab: &str) -> Vec<String> {
    let prefix = format!("nslab-{lab}.");
    let mut v: Vec<String> = std::fs::read_dir("/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    v.sort();
    v
}

/// Brings lab `lab` (state in `state`) down however the trial ends.
struct Down<'a>(&'a World, String, PathBuf);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        if self.2.join(&self.1).exists() {
            let _ = self.0.nslab(&["down", "--force", &self.1], &[("NSLAB_STATE_DIR", &self.2)]);
            let _ = self.0.nslab(&["gc"], &[("NSLAB_STATE_DIR", &self.2)]);
        }
    }
}

/// Issue 12, 4: `nslab gc` with another `NSLAB_STATE_DIR` removed the /run/netns names of labs
/// running under the default one.
fn gc_other_state_dir() -> Result<(), String> {
    let w = World::new()?;
    let lab = format!("s{}g", std::process::id());
    let _down = Down(&w, lab.clone(), w.root().join("state"));
    let up = w.nslab(&["up", "--profile", "dual-stack", "--hosts", "web", "--name", &lab], &[])?;
    ensure!(up.status.success(), "up: {}{}", text(&up.stdout), text(&up.stderr));
    let before = named(&lab);
    ensure!(before == [format!("nslab-{lab}.dns"), format!("nslab-{lab}.web")], "named namespaces after up: {before:?}");
    let other = w.root().join("other-state");
    let gc = w.nslab(&["gc"], &[("NSLAB_STATE_DIR", &other)])?;
    ensure!(gc.status.success() && text(&gc.stdout).trim() == "nothing to remove", "gc with another state dir: {}{}", text(&gc.stdout), text(&gc.stderr));
    ensure!(named(&lab) == before, "gc with another state dir removed {:?}", before.iter().filter(|n| !named(&lab).contains(n)).collect::<Vec<_>>());
    let down = w.nslab(&["down", &lab], &[])?;
    ensure!(down.status.success(), "down: {}", text(&down.stderr));
    ensure!(named(&lab).is_empty(), "namespaces left after down: {:?}", named(&lab));
    Ok(())
}

/// Issue 12, 4: the same `gc` run by another user tried to unmount root's names (only EPERM
/// stopped it); now root's state is refused before anything is read.
fn gc_non_root() -> Result<(), String> {
    let w = World::new()?;
    let lab = format!("s{}n", std::process::id());
    // Root's state where the attacker can see its name.
    let state = w.top.path().join("state");
    let _down = Down(&w, lab.clone(), state.clone());
    let up = w.nslab(&["up", "--profile", "dual-stack", "--hosts", "web", "--name", &lab], &[("NSLAB_STATE_DIR", &state)])?;
    ensure!(up.status.success(), "up: {}{}", text(&up.stdout), text(&up.stderr));
    let before = named(&lab);
    let gc = w.as_evil(&[s(&nslab_tests::nslab_bin()?), "gc"], &[("NSLAB_STATE_DIR", &state), ("NSLAB_ARTIFACTS_DIR", &w.shared().join("evil-art"))])?;
    let err = text(&gc.stderr);
    let want = format!("nslab: {}", refusal(&state, &format!("it is owned by root (uid 0), not by {} who runs nslab", evil_name()), "NSLAB_STATE_DIR"));
    ensure!(!gc.status.success() && err.lines().any(|l| l == want), "gc as uid {EVIL} on root's state; expected:\n  {want}\nfound:\n{err}{}", text(&gc.stdout));
    ensure!(named(&lab) == before, "root's lab lost its namespaces to the attacker's gc");
    let down = w.nslab(&["down", &lab], &[("NSLAB_STATE_DIR", &state)])?;
    ensure!(down.status.success(), "down: {}", text(&down.stderr));
    Ok(())
}

/// Issue 12, 5: two `nslab up --name X` at once: both "succeeded" showing one lab, or neither
/// came up, with misleading errors. Now exactly one wins; the other is told and exits 2.
fn two_ups() -> Result<(), String> {
    let w = World::new()?;
    for round in 0..3 {
        let lab = format!("s{}u{round}", std::process::id());
        let _down = Down(&w, lab.clone(), w.root().join("state"));
        let start = |w: &World| -> Result<std::process::Child, String> {
            let mut c = Command::new(nslab_tests::nslab_bin()?);
            c.args(["up", "--profile", "dual-stack", "--hosts", "a", "--name", &lab])
                .env("NSLAB_STATE_DIR", w.root().join("state"))
                .env("NSLAB_ARTIFACTS_DIR", w.root().join("artifacts"))
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            c.spawn().map_err(|e| e.to_string())
        };
        let (a, b) = (start(&w)?, start(&w)?);
        let (a, b) = (a.wait_with_output().map_err(|e| e.to_string())?, b.wait_with_output().map_err(|e| e.to_string())?);
        let show = |o: &Output| format!("{} {}{}", o.status, text(&o.stdout), text(&o.stderr));
        let (won, lost) = match (a.status.code(), b.status.code()) {
            (Some(0), Some(2)) => (a, b),
            (Some(2), Some(0)) => (b, a),
            _ => return Err(format!("round {round}: expected one up to succeed and one to exit 2:\nfirst: {}\nsecond: {}", show(&a), show(&b))),
        };
        ensure!(text(&won.stdout).contains(&format!("lab {lab} is up")), "round {round}: the winner said {}", show(&won));
        let err = text(&lost.stderr);
        let prefix = format!("nslab: a lab named {lab} is already up (pid ");
        let line = err.lines().find(|l| l.starts_with(&prefix)).ok_or(format!("round {round}: the loser said: {err}"))?;
        let pid: u32 = line[prefix.len()..].split(')').next().and_then(|p| p.parse().ok()).ok_or(format!("round {round}: no pid in {line:?}"))?;
        ensure!(pid > 0, "round {round}: pid 0 in {line:?}");
        ensure!(line.ends_with(&format!("); `nslab down {lab}`, or choose another --name")), "round {round}: {line:?}");
        let down = w.nslab(&["down", &lab], &[])?;
        ensure!(down.status.success() && named(&lab).is_empty(), "round {round}: down: {}{:?}", text(&down.stderr), named(&lab));
    }
    Ok(())
}

/// Issue 12, 9: artifacts of runs killed with -9 were never collected.
fn gc_dead_run_artifacts() -> Result<(), String> {
    let w = World::new()?;
    let art = w.root().join("artifacts");
    // Kept evidence of a failed run: gc must leave it.
    let failed = w.nslab(&["run", s(&w.scenario("fail.toml", FAILING_RUN)?)], &[])?;
    ensure!(!failed.status.success(), "the failing scenario passed");
    let kept: Vec<PathBuf> = tree(&art).into_iter().filter(|(_, md)| md.is_file()).map(|(p, _)| p).collect();
    ensure!(!kept.is_empty(), "the failed run kept nothing");
    let scen = w.scenario(
        "long.toml",
        "description = \"a service that runs long\"\nprofiles = [\"dual-stack\"]\ntimeout = \"300s\"\n[hosts.h]\n[services.s]\nhost = \"h\"\ncommand = [\"sh\", \"-c\", \"echo started-long; exec sleep 300\"]\nready = { line = \"^started-long\" }\n[[expect]]\nkind = \"exit\"\nservice = \"s\"\ncode = 0\n",
    )?;
    let mut run = Command::new(nslab_tests::nslab_bin()?);
    run.args(["run", s(&scen)])
        .env("NSLAB_STATE_DIR", w.root().join("state"))
        .env("NSLAB_ARTIFACTS_DIR", &art)
        .env_remove("NSLAB_REQUIRE_ALL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = run.spawn().map_err(|e| e.to_string())?;
    let pid = child.id();
    // The run is under way once its service's output is in its artifacts.
    let t = Instant::now();
    let log = loop {
        let found =
            tree(&art).into_iter().find(|(p, md)| md.is_file() && !kept.contains(p) && std::fs::read_to_string(p).is_ok_and(|t| t.contains("started-long")));
        if let Some((p, _)) = found {
            break p;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the long service's output did not appear in the artifacts within 60 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).map_err(|e| e.to_string())?;
    let _ = child.wait();
    // Its lab directory: the one holding the log, right below the scenario folder.
    let lab_dir = log.ancestors().find(|d| d.join(".nslab-live").exists()).map(Path::to_path_buf).ok_or(format!("no live marker above {}", log.display()))?;
    let (files, bytes) = tree(&lab_dir).iter().filter(|(_, md)| !md.is_dir()).fold((0u64, 0u64), |(f, b), (_, md)| (f + 1, b + md.len()));
    let gc = w.nslab(&["gc"], &[])?;
    let out = text(&gc.stdout);
    ensure!(gc.status.success(), "gc failed: {out}{}", text(&gc.stderr));
    let want = format!("removed the artifacts of a run that died (pid {pid}): {} ({files} files, {bytes} bytes)", lab_dir.display());
    ensure!(out.lines().any(|l| l == want), "gc; expected the line\n  {want}\nfound:\n{out}");
    ensure!(out.contains(&format!("artifacts removed: 1 directories, {files} files, {bytes} bytes")), "gc's total: {out}");
    ensure!(!lab_dir.exists(), "{} is still there", lab_dir.display());
    ensure!(kept.iter().all(|p| p.exists()), "gc removed kept evidence of a failed run");
    // The folder of the killed run's scenario held nothing else: it goes too.
    let folder = lab_dir.parent().ok_or("no scenario folder")?;
    ensure!(!folder.exists(), "gc left the emptied folder {}", folder.display());
    let again = w.nslab(&["gc"], &[])?;
    ensure!(text(&again.stdout).trim() == "nothing to remove", "second gc: {}", text(&again.stdout));
    Ok(())
}
