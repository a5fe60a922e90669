//! `nslab bundle` and `nslab replay` as a user runs them: a failing and a passing trial, each
//! bundled, their scenario folder and artifacts then deleted (a fresh checkout has neither),
//! replayed from the bundle alone with the same outcome; a replay whose outcome differs from
//! the recorded one exits 1; a hostile bundle is refused (exit 2) with nothing written; the
//! bundle's output file is created new, never through a link.
//!
//! Trials that build labs need root (CAP_NET_ADMIN, CAP_SYS_ADMIN); elsewhere they are
//! ignored with the reason (failed under NSLAB_REQUIRE_ALL=1).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{ensure, gated, kernel_unavailable, R};
use libtest_mimic::{Arguments, Failed, Trial};

type Check = fn() -> R;

fn main() -> std::process::ExitCode {
    let args = Arguments::from_args();
    let kernel = kernel_unavailable();
    let mut trials = vec![
        Trial::test("replay/a-hostile-bundle-is-refused-exit-2-and-nothing-is-written", replay_hostile),
        Trial::test("bundle/the-output-is-created-new-never-through-a-link", bundle_output_new),
        Trial::test("bundle/a-directory-that-is-not-a-trial-is-named", bundle_not_a_trial),
        Trial::test("bundle/a-scenario-in-a-crowded-folder-is-refused", bundle_crowded_folder),
    ];
    let needs_kernel: [(&str, Check); 4] = [
        ("replay/says-what-differs-on-this-machine", replay_differences),
        ("round-trip/a-failing-trial-replays-failing-from-the-bundle-alone", || round_trip("fail", "failed")),
        ("round-trip/a-passing-trial-replays-passing-from-the-bundle-alone", || round_trip("pass", "passed")),
        ("replay/an-outcome-other-than-recorded-exits-1", replay_different),
    ];
    for (name, f) in needs_kernel {
        trials.push(gated(name, kernel.clone(), f));
    }
    libtest_mimic::run(&args, trials).exit_code()
}

/// `nslab ARGS` with its artifacts in `artifacts`, run in `cwd`, NSLAB_REQUIRE_ALL unset.
fn nslab(args: &[&str], artifacts: &Path, cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nslab"))
        .args(args)
        .current_dir(cwd)
        .env("NSLAB_ARTIFACTS_DIR", artifacts)
        .env_remove("NSLAB_REQUIRE_ALL")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("nslab runs")
}

fn text(o: &Output) -> String {
    format!("exit {:?}\n--- stdout\n{}--- stderr\n{}", o.status.code(), String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A scenario folder `roundtrip/` with a file its program reads through `{{scenario_dir}}`
/// (so the replay needs the folder's files from the bundle) and two scenarios: `pass` (the
/// line the file holds is expected) and `fail` (another line is expected: it fails every time).
fn scenario_folder(root: &Path) -> PathBuf {
    let dir = root.join("roundtrip");
    std::fs::create_dir_all(dir.join("files")).expect("mkdir");
    std::fs::write(dir.join("files/greeting.txt"), "hello from the folder\n").expect("write");
    let scenario = |expected: &str| {
        format!(
            r#"description = "bundle round trip fixture"
profiles = ["dual-stack"]
timeout = "20s"

[hosts.web]

[services.hello]
host = "web"
command = ["sh", "-c", "cat {{{{scenario_dir}}}}/files/greeting.txt"]
ready = {{ exit = true }}

[[expect]]
name = "it greets"
kind = "output"
service = "hello"
matches = '^{expected}$'
"#
        )
    };
    std::fs::write(dir.join("pass.toml"), scenario("hello from the folder")).expect("write");
    std::fs::write(dir.join("fail.toml"), scenario("goodbye from the folder")).expect("write");
    dir
}

fn artifacts_line(o: &Output) -> Option<PathBuf> {
    String::from_utf8_lossy(&o.stdout).lines().find_map(|l| l.trim().strip_prefix("artifacts: ").map(PathBuf::from))
}

/// Runs `which` in the folder with --keep, bundles its trial, deletes the folder and the
/// artifacts; returns the bundle.
fn run_and_bundle(tmp: &Path, which: &str) -> Result<PathBuf, Failed> {
    let folder = scenario_folder(&tmp.join("checkout"));
    let art = tmp.join("art-recorded");
    let o = nslab(&["run", "--keep", s(&folder.join(format!("{which}.toml")))], &art, tmp);
    let dir = artifacts_line(&o).ok_or_else(|| format!("no artifacts line\n{}", text(&o)))?;
    let bundle = tmp.join(format!("{which}.nslab"));
    let b = nslab(&["bundle", s(&dir), "-o", s(&bundle)], &art, tmp);
    ensure!(b.status.code() == Some(0), "bundle failed\n{}", text(&b));
    ensure!(String::from_utf8_lossy(&b.stdout).contains(&format!("bundled roundtrip/{which}/dual-stack")), "{}", text(&b));
    // The same trial found by its name below the run's artifact directory.
    let by_name = tmp.join(format!("{which}-by-name.nslab"));
    let n = nslab(&["bundle", s(&art), &format!("roundtrip/{which}/dual-stack"), "-o", s(&by_name)], &art, tmp);
    ensure!(n.status.code() == Some(0), "bundle by name failed\n{}", text(&n));
    ensure!(members(&by_name)? == members(&bundle)?, "the two bundles differ");
    let none = nslab(&["bundle", s(&art), "roundtrip/absent/dual-stack", "-o", s(&tmp.join("none.nslab"))], &art, tmp);
    ensure!(
        String::from_utf8_lossy(&none.stderr)
            == format!(
                "nslab: {}: no artifact directory of trial roundtrip/absent/dual-stack below it; trials found: roundtrip/{which}/dual-stack\n",
                art.display()
            ),
        "{}",
        text(&none)
    );
    // A fresh checkout: neither the scenario folder nor the recorded artifacts.
    std::fs::remove_dir_all(tmp.join("checkout")).expect("rm");
    std::fs::remove_dir_all(&art).expect("rm");
    Ok(bundle)
}

fn round_trip(which: &str, outcome: &str) -> R {
    let tmp = tempfile::tempdir()?;
    let bundle = run_and_bundle(tmp.path(), which)?;
    let art = tmp.path().join("art-replay");
    let o = nslab(&["replay", s(&bundle)], &art, tmp.path());
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    ensure!(o.status.code() == Some(0), "replay exit\n{}", text(&o));
    ensure!(out.contains(&format!("trial roundtrip/{which}/dual-stack ({outcome})")), "{}", text(&o));
    ensure!(out.contains("this machine: the same kernel, program versions and sysctls as recorded"), "{}", text(&o));
    ensure!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["outcome", outcome, outcome]), "no side-by-side outcome row\n{}", text(&o));
    let verdict = if which == "pass" { "ok" } else { "FAIL" };
    ensure!(out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["verdict", verdict, verdict]), "no side-by-side verdict row\n{}", text(&o));
    // The program read the folder's file from the bundle: the observed line, recorded and now.
    let observed = if which == "pass" { "matching line \"hello from the folder\"" } else { "no line matches" };
    ensure!(out.lines().any(|l| l.trim_start().starts_with("observed") && l.matches(observed).count() == 2), "observed text not on both sides\n{}", text(&o));
    ensure!(out.contains(&format!("same outcome as recorded: {outcome}")), "{}", text(&o));
    // Everything the replay wrote is in its one fresh directory, owner-only.
    let entries: Vec<PathBuf> = std::fs::read_dir(&art)?.flatten().map(|e| e.path()).collect();
    ensure!(entries.len() == 1 && entries[0].file_name().is_some_and(|n| n.to_string_lossy().starts_with("replay-")), "{entries:?}");
    use std::os::unix::fs::PermissionsExt;
    ensure!(std::fs::metadata(&entries[0])?.permissions().mode() & 0o777 == 0o700, "fresh directory mode");
    ensure!(entries[0].join("bundle/scenarios/roundtrip/files/greeting.txt").is_file(), "the folder's file was not extracted");
    Ok(())
}

/// The bundle of the failing trial with its manifest saying it passed: the replay fails, and
/// says so with exit 1.
fn replay_different() -> R {
    let tmp = tempfile::tempdir()?;
    let bundle = run_and_bundle(tmp.path(), "fail")?;
    let mut members: Vec<(String, Vec<u8>)> = Vec::new();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&bundle)?));
    for e in a.entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data)?;
        if name == "manifest.json" {
            data = String::from_utf8(data)?.replace("\"outcome\": \"failed\"", "\"outcome\": \"passed\"").into_bytes();
        }
        members.push((name, data));
    }
    let forged = tmp.path().join("forged.nslab");
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(std::fs::File::create(&forged)?, flate2::Compression::fast()));
    for (name, data) in &members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        b.append_data(&mut h, name, data.as_slice())?;
    }
    b.into_inner()?.finish()?;
    let o = nslab(&["replay", s(&forged)], &tmp.path().join("art-replay"), tmp.path());
    ensure!(o.status.code() == Some(1), "replay exit\n{}", text(&o));
    ensure!(String::from_utf8_lossy(&o.stdout).contains("DIFFERENT outcome: recorded passed, now failed"), "{}", text(&o));
    Ok(())
}

fn replay_hostile() -> R {
    let tmp = tempfile::tempdir()?;
    let bundle = tmp.path().join("evil.nslab");
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(std::fs::File::create(&bundle)?, flate2::Compression::fast()));
    let mut h = tar::Header::new_old();
    let name = b"../../escaped";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &b"bad"[..])?;
    b.into_inner()?.finish()?;
    let art = tmp.path().join("work/art");
    let o = nslab(&["replay", s(&bundle)], &art, tmp.path());
    ensure!(o.status.code() == Some(2), "exit\n{}", text(&o));
    let expected = format!(
        "nslab: refusing bundle {}: member \"../../escaped\" leaves the bundle ('..' in its path); members are relative paths inside it\n",
        bundle.display()
    );
    ensure!(String::from_utf8_lossy(&o.stderr) == expected, "{}", text(&o));
    ensure!(!art.exists(), "the refused replay made {}", art.display());
    ensure!(!tmp.path().join("escaped").exists() && !tmp.path().parent().expect("parent").join("escaped").exists(), "a file escaped");
    Ok(())
}

fn bundle_output_new() -> R {
    let tmp = tempfile::tempdir()?;
    // A trial directory without running anything: what a trial leaves, minimal.
    let (_, trial) = minimal_trial(tmp.path())?;
    let art = tmp.path().join("art");
    let taken = tmp.path().join("taken.nslab");
    std::fs::write(&taken, "someone's file")?;
    let o = nslab(&["bundle", s(&trial), "-o", s(&taken)], &art, tmp.path());
    ensure!(o.status.code() == Some(1), "{}", text(&o));
    ensure!(String::from_utf8_lossy(&o.stderr).starts_with(&format!("nslab: cannot write {}: File exists", taken.display())), "{}", text(&o));
    ensure!(std::fs::read_to_string(&taken)? == "someone's file", "replaced");
    let link = tmp.path().join("link.nslab");
    std::os::unix::fs::symlink(tmp.path().join("elsewhere"), &link)?;
    let o = nslab(&["bundle", s(&trial), "-o", s(&link)], &art, tmp.path());
    ensure!(o.status.code() == Some(1), "{}", text(&o));
    ensure!(!tmp.path().join("elsewhere").exists(), "written through the link");
    let good = tmp.path().join("good.nslab");
    let o = nslab(&["bundle", s(&trial), "-o", s(&good)], &art, tmp.path());
    ensure!(o.status.code() == Some(0), "{}", text(&o));
    use std::os::unix::fs::PermissionsExt;
    ensure!(std::fs::metadata(&good)?.permissions().mode() & 0o777 == 0o600, "bundle mode");
    // It holds the scenario, its folder's file (not the other scenario) and the artifacts.
    let names = members(&good)?;
    ensure!(
        names
            == [
                "manifest.json",
                "scenarios/roundtrip/pass.toml",
                "scenarios/roundtrip/files/greeting.txt",
                "artifacts/environment.json",
                "artifacts/results.json"
            ],
        "{names:?}"
    );
    Ok(())
}

fn bundle_not_a_trial() -> R {
    let tmp = tempfile::tempdir()?;
    let o = nslab(&["bundle", s(tmp.path()), "-o", s(&tmp.path().join("x.nslab"))], &tmp.path().join("art"), tmp.path());
    ensure!(o.status.code() == Some(1), "{}", text(&o));
    let expected = format!(
        "nslab: {}: not a trial's artifact directory (it has no environment.json); give a trial's artifact directory, or a run's artifact directory and a trial name\n",
        tmp.path().display()
    );
    ensure!(String::from_utf8_lossy(&o.stderr) == expected, "{}", text(&o));
    ensure!(!tmp.path().join("x.nslab").exists(), "written");
    Ok(())
}

/// The member names of a bundle, in order.
fn members(bundle: &Path) -> Result<Vec<String>, Failed> {
    let mut names = Vec::new();
    for e in tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(bundle)?)).entries()? {
        names.push(e?.path()?.to_string_lossy().into_owned());
    }
    Ok(names)
}

/// A trial directory as a trial leaves it (minimal: environment.json, results.json) for the
/// scenario `pass` of a new scenario folder below `root`.
fn minimal_trial(root: &Path) -> Result<(PathBuf, PathBuf), Failed> {
    let folder = scenario_folder(&root.join("checkout"));
    let trial = root.join("trial");
    std::fs::create_dir(&trial)?;
    let env = serde_json::json!({"trial": "roundtrip/pass/dual-stack", "profile": "dual-stack", "scenario_file": folder.join("pass.toml")});
    std::fs::write(trial.join("environment.json"), env.to_string())?;
    std::fs::write(trial.join("results.json"), r#"{"expectations": [], "outcome": "passed"}"#)?;
    Ok((folder, trial))
}

fn bundle_crowded_folder() -> R {
    let tmp = tempfile::tempdir()?;
    let (folder, trial) = minimal_trial(tmp.path())?;
    for i in 0..1000 {
        std::fs::write(folder.join(format!("junk{i}.txt")), "x")?;
    }
    let out = tmp.path().join("x.nslab");
    let o = nslab(&["bundle", s(&trial), "-o", s(&out)], &tmp.path().join("art"), tmp.path());
    ensure!(o.status.code() == Some(1), "{}", text(&o));
    let expected = format!(
        "nslab: {}: the scenario's folder holds 1003 files, 1662 bytes (a bundle takes at most 1000 files, 67108864 bytes of it); move the scenario and its files into a folder of their own\n",
        folder.display()
    );
    ensure!(String::from_utf8_lossy(&o.stderr) == expected, "{}", text(&o));
    ensure!(!out.exists(), "an incomplete bundle was left");
    Ok(())
}

/// A bundle whose recorded kernel and sysctl are not this machine's: `replay --no-run` names
/// both, recorded against here.
fn replay_differences() -> R {
    let tmp = tempfile::tempdir()?;
    let (_, trial) = minimal_trial(tmp.path())?;
    let art = tmp.path().join("art");
    let good = tmp.path().join("good.nslab");
    let o = nslab(&["bundle", s(&trial), "-o", s(&good)], &art, tmp.path());
    ensure!(o.status.code() == Some(0), "{}", text(&o));
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for e in tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&good)?)).entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data)?;
        if name == "manifest.json" {
            let mut m: serde_json::Value = serde_json::from_slice(&data)?;
            m["machine"]["kernel"] = "0.0.1-recorded".into();
            m["machine"]["sysctls"]["net.ipv6.bindv6only"] = "7".into();
            data = serde_json::to_vec(&m)?;
        }
        out.push((name, data));
    }
    let forged = tmp.path().join("other-machine.nslab");
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(std::fs::File::create(&forged)?, flate2::Compression::fast()));
    for (name, data) in &out {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        b.append_data(&mut h, name, data.as_slice())?;
    }
    b.into_inner()?.finish()?;
    let o = nslab(&["replay", "--no-run", s(&forged)], &art, tmp.path());
    ensure!(o.status.code() == Some(0), "{}", text(&o));
    let release = nix::sys::utsname::uname()?.release().to_string_lossy().into_owned();
    let bindv6only = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only")?.trim().to_string();
    let stdout = String::from_utf8_lossy(&o.stdout);
    ensure!(stdout.contains("this machine differs from the recorded one:"), "{}", text(&o));
    ensure!(stdout.contains(&format!("  kernel: recorded 0.0.1-recorded, here {release}\n")), "{}", text(&o));
    ensure!(stdout.contains(&format!("  sysctl net.ipv6.bindv6only: recorded 7, here {bindv6only}\n")), "{}", text(&o));
    Ok(())
}
