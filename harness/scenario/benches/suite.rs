//! Scenario suite timing: the wall time of a suite (every scenario under `scenarios/`, or under
//! `NSLAB_BENCH_PATH` such as `scenarios/stale-dns`, in every profile it lists) against the sum of
//! its trials' times and against its slowest trial, next to the harness's own cost per trial.
//!
//! It runs the suite the way `nslab run scenarios/` does (`runner::collect`, `runner::run_all`,
//! `-j` trials at once on a two-worker runtime) and reads each trial's `duration_ms` from its
//! result, the figure the JSON report carries. Wall / sum says how much running trials
//! concurrently saves; wall / slowest how close the suite comes to its lower bound. Trials start
//! longest-expected first (`run_all`), so a long one never waits for a slot behind short ones.
//!
//! The harness's overhead per trial is the full time of a trivial trial (a lab with one host and
//! the DNS server, one process that exits at once, teardown), run alone `NSLAB_BENCH_TRIVIAL`
//! times (default 5): what a scenario costs beyond its own waits.
//!
//! Run as root: `cargo bench -p nslab-scenario --bench suite`. Environment: `NSLAB_BENCH_JOBS` (trials
//! at once whatever they weigh, like `-j`; default: the machine's admission, as `nslab run` and
//! `cargo test` decide it), `NSLAB_BENCH_RUNS` (whole-suite runs, default 1),
//! `NSLAB_BENCH_PATH` (scenario folder or file, relative to the workspace; default `scenarios/`),
//! `NSLAB_BENCH_JSON` (default `target/nslab-bench/suite.json`). Trials whose programs are missing
//! are ignored, as under `nslab run`, and counted. It never fails on timing; it fails when a trial
//! fails, since a failing suite's times mean little.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nslab_scenario::runner::{self, Outcome, RunOptions};

fn main() {
    if let Err(e) = run() {
        eprintln!("suite: {e:#}");
        std::process::exit(1);
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: &str) -> Result<T> {
    let v = std::env::var(key).unwrap_or_else(|_| default.into());
    v.trim().parse().map_err(|_| anyhow::anyhow!("{key}: {v:?} is not a number"))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("the workspace holds harness/CRATE").to_path_buf()
}

fn run() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN): run `sudo -E cargo bench -p nslab-scenario --bench suite`");
    }
    let jobs: Option<usize> = match std::env::var("NSLAB_BENCH_JOBS") {
        Ok(_) => Some(env_or("NSLAB_BENCH_JOBS", "0")?),
        Err(_) => None,
    };
    let runs: usize = env_or("NSLAB_BENCH_RUNS", "1")?;
    // Relative to the workspace: cargo runs benches in harness/.
    let path = workspace().join(std::env::var_os("NSLAB_BENCH_PATH").map(PathBuf::from).unwrap_or_else(|| "scenarios".into()));
    let trivial_runs: usize = env_or("NSLAB_BENCH_TRIVIAL", "5")?;
    let (trials, errors) = runner::collect(std::slice::from_ref(&path), &[]);
    if !errors.is_empty() {
        bail!("invalid scenarios:\n{}", errors.join("\n"));
    }
    let admission = match jobs {
        Some(j) => runner::Admission::fixed(j),
        None => runner::Admission::for_machine(&trials),
    };
    let jobs = admission.jobs;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "suite: {} trials from {} | {} | {} cores | load {} | {runs} run(s)",
        trials.len(),
        path.display(),
        admission.summary,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    );
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().context("tokio runtime")?;
    let opts = RunOptions::default();
    let overhead = trivial_trial(&rt, &opts, trivial_runs)?;
    let mut json_runs = Vec::new();
    for r in 1..=runs {
        let t0 = Instant::now();
        let results = rt.block_on(runner::run_admitted(&trials, &opts, &admission, |_| {}));
        let wall = t0.elapsed().as_secs_f64();
        let failed: Vec<String> = results.iter().filter(|t| t.outcome == Outcome::Failed).map(|t| format!("{}: {}", t.name, t.failure_text())).collect();
        if !failed.is_empty() {
            bail!("run {r}: {} trial(s) failed, so the times are not reported:\n{}", failed.len(), failed.join("\n"));
        }
        let ran: Vec<_> = results.iter().filter(|t| t.outcome == Outcome::Passed).collect();
        let ignored = results.len() - ran.len();
        let sum: f64 = ran.iter().map(|t| t.duration_ms as f64 / 1000.0).sum();
        let slowest = ran.iter().max_by_key(|t| t.duration_ms).context("no trial ran")?;
        let slow = slowest.duration_ms as f64 / 1000.0;
        println!();
        println!("run {r}: {} trials passed, {ignored} ignored (missing programs)", ran.len());
        println!("{:<28} {:>10}", "figure", "seconds");
        println!("{:<28} {:>10.2}", "wall time of the suite", wall);
        println!("{:<28} {:>10.2}", "sum of the trials' times", sum);
        println!("{:<28} {:>10.2}   ({})", "slowest trial", slow, slowest.name);
        println!(
            "{:<28} {:>10.3}   (a trivial trial alone, median of {trivial_runs}; min {:.3}, max {:.3})",
            "harness overhead per trial", overhead.1, overhead.0, overhead.2
        );
        println!("{:<28} {:>10.2}   (wall - slowest)", "wall beyond the slowest", wall - slow);
        println!("ratios: wall/sum {:.3}x, wall/slowest {:.3}x, sum/wall {:.1} trials running on average", wall / sum, wall / slow, sum / wall);
        let mut by_time: Vec<_> = ran.iter().map(|t| (t.duration_ms, t.name.as_str())).collect();
        by_time.sort_by(|a, b| b.cmp(a));
        println!("slowest five: {}", by_time.iter().take(5).map(|(ms, n)| format!("{n} {:.2} s", *ms as f64 / 1000.0)).collect::<Vec<_>>().join(", "));
        let json = serde_json::json!({
            "run": r,
            "trials_passed": ran.len(),
            "trials_ignored": ignored,
            "jobs": jobs,
            "unit": "s",
            "wall": round3(wall),
            "sum": round3(sum),
            "slowest": { "trial": slowest.name, "time": round3(slow) },
            "wall_over_sum": round3(wall / sum),
            "wall_over_slowest": round3(wall / slow),
            "overhead_per_trial": { "min": round3(overhead.0), "median": round3(overhead.1), "max": round3(overhead.2) },
            "trials": by_time.iter().map(|(ms, n)| serde_json::json!({ "trial": n, "time": *ms as f64 / 1000.0 })).collect::<Vec<_>>(),
        });
        println!(
            "{}",
            serde_json::json!({ "bench": "suite", "wall": json["wall"], "sum": json["sum"], "slowest": json["slowest"], "wall_over_sum": json["wall_over_sum"], "wall_over_slowest": json["wall_over_slowest"], "overhead_per_trial": json["overhead_per_trial"]["median"] })
        );
        json_runs.push(json);
    }
    let path = std::env::var_os("NSLAB_BENCH_JSON").map(PathBuf::from).unwrap_or_else(|| workspace().join("target/nslab-bench/suite.json"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&serde_json::json!({ "bench": "suite", "runs": json_runs }))? + "\n")
        .with_context(|| format!("write {}", path.display()))?;
    println!("suite: JSON written to {}", path.display());
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The full time of a trivial trial, run alone `n` times: (min, median, max) seconds.
fn trivial_trial(rt: &tokio::runtime::Runtime, opts: &RunOptions, n: usize) -> Result<(f64, f64, f64)> {
    // A fresh owner-only directory with an unguessable name (never a fixed name in /tmp).
    let tmp = tempfile::Builder::new().prefix("nslab-bench-trivial-").tempdir().context("create a temporary directory")?;
    let dir = tmp.path();
    let file = dir.join("trivial.toml");
    std::fs::write(
        &file,
        r#"description = "bench: the harness's own cost of a trial, with nothing to wait for"
profiles = ["dual-stack"]
[hosts.a]
[dns]
[[dns.zones]]
origin = "example.test"
records = [{ name = "a", host = "a", ttl = 2 }]
[services.t]
host = "a"
command = ["/bin/true"]
[[expect]]
kind = "exit"
service = "t"
code = 0
"#,
    )?;
    let (trials, errors) = runner::collect(std::slice::from_ref(&file), &[]);
    if !errors.is_empty() {
        bail!("trivial scenario: {}", errors.join("\n"));
    }
    let mut times = Vec::new();
    for _ in 0..n.max(1) {
        let r = rt.block_on(runner::run_all(&trials, opts, 1, |_| {}));
        let t = r.first().context("the trivial trial did not run")?;
        if t.outcome != Outcome::Passed {
            bail!("the trivial trial failed: {}", t.failure_text());
        }
        times.push(t.duration_ms as f64 / 1000.0);
    }
    drop(tmp);
    times.sort_by(f64::total_cmp);
    Ok((times[0], times[times.len() / 2], times[times.len() - 1]))
}
