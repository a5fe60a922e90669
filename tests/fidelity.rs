//! The fidelity check can fail: a program whose wait is a kernel timer the time warp cannot
//! reach (a socket's SO_RCVTIMEO: the kernel times the receive, no call of the program carries
//! the timeout) waits 3 s of real time at any scale, so at 10x its window is 30 s of program
//! time, and the check fails it; the same program waiting with a sleep (a timed wait the warp
//! scales) gives the same window at both scales, and the check passes it.

use libtest_mimic::Arguments;
use nslab_scenario::runner::{fidelity, RunOptions};
use nslab_tests::{ensure, trial_requiring};

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let mut args = Arguments::from_args();
    // One at a time: each runs two trials back to back, and load would blur their windows.
    args.test_threads = Some(1);
    let trials = vec![
        trial_requiring("fidelity/a-kernel-timer-fails-the-check", &["python3"], kernel_timer_fails),
        trial_requiring("fidelity/a-warped-sleep-passes-the-check", &["python3"], warped_sleep_passes),
    ];
    nslab_tests::run_checking_host(&args, trials)
}

/// A 3 s receive timeout kept by the kernel (SO_RCVTIMEO on a socket nobody sends to).
const KERNEL_TIMER: &str = r#"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 3, 0))
print("waiting", flush=True)
try:
    s.recv(1)
except OSError:
    pass
print("done", flush=True)
"#;

/// The same 3 s as a sleep of the program's own.
const SLEEP: &str = r#"
import time
print("waiting", flush=True)
time.sleep(3)
print("done", flush=True)
"#;

fn scenario(program: &str) -> String {
    format!(
        r#"description = "a program that waits 3 s, then prints done"
profiles = ["dual-stack"]
timeout = "90s"
time_scale = 10

[requires]
python3 = "*"

[hosts.a]

[services.waiter]
host = "a"
command = ["python3", "-c", '''{program}''']
ready = {{ line = "^waiting$" }}

[[timeline]]
name = "begin"
action = "wait"
duration = "0s"

[[expect]]
name = "done within a minute"
kind = "line-within"
service = "waiter"
matches = "^done$"
after = "begin"
within = "60s"
"#
    )
}

/// Runs the fidelity check of `program`'s scenario at 10x; returns it rendered and the window of
/// "done" at 1x and at 10x.
async fn check(program: &str) -> Result<(fidelity::Fidelity, f64, f64), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("waiter.toml");
    std::fs::write(&path, scenario(program)).map_err(|e| e.to_string())?;
    let s = nslab_scenario::scenario::load(&path).map_err(|e| e.to_string())?;
    let f = fidelity::run_fidelity("fidelity/waiter/dual-stack", &s, nslab::Profile::DualStack, 10.0, &RunOptions::default()).await;
    eprintln!("{}", f.render());
    let window = |r: &nslab_scenario::runner::TrialResult| r.windows.iter().find(|w| w.what.contains("done")).map(|w| w.seconds);
    let (Some(a), Some(b)) = (window(&f.real), window(&f.scaled)) else {
        return Err(format!("a trial measured no window:\n{}\n{}\n{}", f.render(), f.real.failure_text(), f.scaled.failure_text()));
    };
    Ok((f, a, b))
}

async fn kernel_timer_fails() -> Result<(), String> {
    let (f, at_1x, at_10x) = check(KERNEL_TIMER).await?;
    // Both trials pass (done within a minute either way): only the window tells them apart.
    ensure!(f.real.outcome == f.scaled.outcome, "the outcomes differ: {:?} at 1x, {:?} at 10x", f.real.outcome, f.scaled.outcome);
    ensure!(at_1x >= 2.9, "at 1x done came {at_1x:.2}s after the step; expected the 3 s timer");
    ensure!(at_10x >= 25.0, "at 10x done came {at_10x:.2}s (program time) after the step; expected about 30 s: the kernel's 3 s of real time");
    ensure!(!f.agrees(), "the fidelity check passed a 3 s kernel timer measured {at_1x:.2}s at 1x and {at_10x:.2}s at 10x:\n{}", f.render());
    let differing: Vec<&str> = f.differences().map(|r| r.what.as_str()).collect();
    ensure!(
        differing == ["done within a minute: first \"^done$\" after step begin"],
        "expected exactly the window of done to differ, got {differing:?}\n{}",
        f.render()
    );
    Ok(())
}

async fn warped_sleep_passes() -> Result<(), String> {
    let (f, at_1x, at_10x) = check(SLEEP).await?;
    ensure!(f.agrees(), "the fidelity check failed a warped sleep:\n{}", f.render());
    // Its 3 s in program time at both scales (the agreement above bounds the difference).
    ensure!(at_1x >= 2.9 && at_10x >= 2.9, "done came {at_1x:.2}s (1x) and {at_10x:.2}s (10x) after the step; expected the 3 s sleep at both");
    Ok(())
}
