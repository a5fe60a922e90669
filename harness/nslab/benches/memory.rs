//! Harness memory: the resident memory nslab's own process adds per lab and per host.
//!
//! Each configuration (N labs of M dual-stack hosts, with or without the lab DNS server) runs in
//! a fresh child process (this binary, re-run with `NSLAB_MEMORY_CHILD=N,M,dns`), so that no
//! allocator state carries over from one configuration to the next. The child starts its
//! runtime, builds and tears down one warm-up lab (one-time costs: the spawner thread, the
//! seccomp filter, lazily initialised tables), reads `/proc/self/smaps_rollup` (Rss, Pss,
//! Anonymous) and `VmRSS`, builds the N labs and holds them, reads again, tears them down and
//! reads a third time. Per lab = held delta / N; per host = held delta / (N x M). The kernel's own
//! cost of the namespaces and interfaces is not in a process's resident memory: the
//! system-wide `Slab` delta from `/proc/meminfo` is printed beside it, marked as noisy (any other
//! process on the machine moves it).
//!
//! Run as root: `cargo bench -p nslab --bench memory`. Environment: `NSLAB_BENCH_MEMORY`
//! (configurations as `labs x hosts [+dns]`, `;`-separated, default
//! `10x1;10x3;10x10;1x100;10x3+dns`), `NSLAB_BENCH_JSON` (default
//! `target/nslab-bench/memory.json`). It prints figures; it has no goals and never fails on them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use nslab::{Lab, LabDns, Profile};

fn main() {
    let r = match std::env::var("NSLAB_MEMORY_CHILD") {
        Ok(cfg) => child(&cfg),
        Err(_) => parent(),
    };
    if let Err(e) = r {
        eprintln!("memory: {e:#}");
        std::process::exit(1);
    }
}

/// One configuration: labs, hosts per lab, whether each lab runs the DNS server.
#[derive(Clone, Copy)]
struct Config {
    labs: usize,
    hosts: usize,
    dns: bool,
}

impl Config {
    fn parse(s: &str) -> Result<Config> {
        let s = s.trim();
        let (body, dns) = match s.strip_suffix("+dns") {
            Some(b) => (b, true),
            None => (s, false),
        };
        let (l, h) = body.split_once('x').with_context(|| format!("{s:?}: expected LABSxHOSTS[+dns], such as 10x3+dns"))?;
        Ok(Config { labs: l.trim().parse().with_context(|| format!("{s:?}: labs"))?, hosts: h.trim().parse().with_context(|| format!("{s:?}: hosts"))?, dns })
    }

    fn label(self) -> String {
        format!("{}x{}{}", self.labs, self.hosts, if self.dns { "+dns" } else { "" })
    }
}

/// Memory figures of this process, in KiB.
#[derive(Clone, Copy, Default, Debug)]
struct Mem {
    rss: i64,
    pss: i64,
    anon: i64,
    vm_rss: i64,
    slab: i64,
}

impl Mem {
    fn read() -> Mem {
        let field = |text: &str, key: &str| -> i64 {
            text.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.split_whitespace().next()?.parse().ok()).unwrap_or(-1)
        };
        let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Mem {
            rss: field(&rollup, "Rss:"),
            pss: field(&rollup, "Pss:"),
            anon: field(&rollup, "Anonymous:"),
            vm_rss: field(&status, "VmRSS:"),
            slab: field(&meminfo, "Slab:"),
        }
    }

    fn json(self) -> serde_json::Value {
        serde_json::json!({ "rss_kib": self.rss, "pss_kib": self.pss, "anon_kib": self.anon, "vm_rss_kib": self.vm_rss, "system_slab_kib": self.slab })
    }
}

fn child(cfg: &str) -> Result<()> {
    let c = Config::parse(cfg)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    let out = rt.block_on(async {
        let base = Mem::read();
        let build = |hosts: usize| {
            let names: Vec<String> = (1..=hosts).map(|i| format!("h{i}")).collect();
            let mut b = Lab::builder().profile(Profile::DualStack).hosts(names);
            if c.dns {
                b = b.dns(LabDns::new());
            }
            b.build()
        };
        build(c.hosts).await?.teardown().await?;
        let warm = Mem::read();
        let mut labs = Vec::new();
        for _ in 0..c.labs {
            labs.push(build(c.hosts).await?);
        }
        let held = Mem::read();
        for lab in labs {
            lab.teardown().await?;
        }
        let after = Mem::read();
        anyhow::Ok(serde_json::json!({ "base": base.json(), "warm": warm.json(), "held": held.json(), "after": after.json() }))
    })?;
    println!("{out}");
    Ok(())
}

fn parent() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN): run `sudo -E cargo bench -p nslab --bench memory`");
    }
    let spec = std::env::var("NSLAB_BENCH_MEMORY").unwrap_or_else(|_| "10x1;10x3;10x10;1x100;10x3+dns".into());
    let configs: Vec<Config> = spec.split(';').filter(|s| !s.trim().is_empty()).map(Config::parse).collect::<Result<_>>()?;
    let exe = std::env::current_exe().context("current_exe")?;
    println!("memory: harness resident memory per lab and per host (KiB), one fresh process per configuration, dual-stack");
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>9}   {:>9} {:>9} {:>9}   {:>9} {:>12}",
        "labs x h", "warm-up", "Rss held", "per lab", "per host", "Anon lab", "Pss lab", "VmRSS lab", "left after", "slab/lab*"
    );
    let mut rows = Vec::new();
    for c in configs {
        let out = Command::new(&exe).env("NSLAB_MEMORY_CHILD", c.label()).output().context("run the child")?;
        if !out.status.success() {
            bail!("configuration {} failed: {}", c.label(), String::from_utf8_lossy(&out.stderr).trim());
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| format!("child output {:?}", String::from_utf8_lossy(&out.stdout)))?;
        let get = |phase: &str, key: &str| v[phase][key].as_i64().unwrap_or(-1);
        let d = |key: &str| (get("held", key) - get("warm", key)) as f64;
        let n = c.labs as f64;
        let per_lab = d("rss_kib") / n;
        let per_host = per_lab / c.hosts as f64;
        println!(
            "{:<10} {:>9} {:>9} {:>9.0} {:>9.1}   {:>9.0} {:>9.0} {:>9.0}   {:>9} {:>12.0}",
            c.label(),
            get("warm", "rss_kib") - get("base", "rss_kib"),
            d("rss_kib") as i64,
            per_lab,
            per_host,
            d("anon_kib") / n,
            d("pss_kib") / n,
            d("vm_rss_kib") / n,
            get("after", "rss_kib") - get("warm", "rss_kib"),
            d("system_slab_kib") / n,
        );
        rows.push(serde_json::json!({
            "config": c.label(), "labs": c.labs, "hosts": c.hosts, "dns": c.dns,
            "rss_per_lab_kib": per_lab.round(), "rss_per_host_kib": (per_host * 10.0).round() / 10.0,
            "anon_per_lab_kib": (d("anon_kib") / n).round(), "pss_per_lab_kib": (d("pss_kib") / n).round(),
            "system_slab_per_lab_kib_noisy": (d("system_slab_kib") / n).round(),
            "phases": v,
        }));
    }
    println!("warm-up: Rss added by the runtime and one built and torn-down lab; left after: Rss still held after every lab is torn down (allocator caches)");
    println!("* slab/lab: system-wide kernel Slab delta per lab (namespaces, interfaces, sockets), noisy: other processes move it");
    let path = std::env::var_os("NSLAB_BENCH_JSON").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("the workspace holds harness/CRATE").join("target/nslab-bench/memory.json")
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    std::fs::write(&path, serde_json::to_string_pretty(&serde_json::json!({ "bench": "memory", "configs": rows }))? + "\n")
        .with_context(|| format!("write {}", path.display()))?;
    println!("memory: JSON written to {}", path.display());
    Ok(())
}
