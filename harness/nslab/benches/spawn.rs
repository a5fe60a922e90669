//! What starting a program in a lab host costs: `Host::run` of `/bin/true` (spawn of its PID 1
//! init, namespaces, the host's bind mounts, exec, exit), one after another, and the build plus
//! first spawn plus teardown of a 3-host lab (the first spawn of each host creates its /etc files
//! and its own /run, /tmp, /var/tmp under the artifacts).
//!
//! Run as root: `cargo bench -p nslab --bench spawn`. `NSLAB_BENCH_ITERS` (spawns, default 300;
//! lab rounds are a tenth). Prints median, p10, p90 in microseconds. It never fails on timing.

use std::time::{Duration, Instant};

use nslab::{Command, Lab};

fn main() {
    nslab::os::rootless::enter().expect("root or rootless mode");
    let iters: usize = std::env::var("NSLAB_BENCH_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        let root = tempfile::tempdir().expect("artifacts");
        let lab = Lab::builder().artifacts_in(root.path()).host("h").build().await.expect("lab");
        let h = lab.host("h").expect("host").clone();
        let mut spawns = Vec::new();
        for i in 0..iters + 20 {
            let t = Instant::now();
            let p = h.run(Command::new("/bin/true"), Duration::from_secs(10)).await.expect("run /bin/true");
            let d = t.elapsed();
            assert!(p.exit().is_some_and(|e| e.success()));
            if i >= 20 {
                spawns.push(d);
            }
        }
        lab.teardown().await.expect("teardown");
        let (mut labs, mut builds, mut firsts, mut teardowns) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..iters / 10 + 2 {
            let t = Instant::now();
            let lab = Lab::builder().artifacts_in(root.path()).hosts(["a", "b", "c"]).build().await.expect("lab");
            let built = t.elapsed();
            for h in lab.hosts() {
                h.run(Command::new("/bin/true"), Duration::from_secs(10)).await.expect("run /bin/true");
            }
            let ran = t.elapsed();
            lab.teardown().await.expect("teardown");
            if i >= 2 {
                labs.push(t.elapsed());
                builds.push(built);
                firsts.push(ran - built);
                teardowns.push(t.elapsed() - ran);
            }
        }
        report("spawn+exit of /bin/true in a host", &mut spawns);
        report("3-host lab: build, one program per host, teardown", &mut labs);
        report("  of which build", &mut builds);
        report("  of which the first program of each host (creates its files)", &mut firsts);
        report("  of which teardown", &mut teardowns);
    });
}

fn report(what: &str, v: &mut [Duration]) {
    v.sort();
    let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6;
    println!("{what}: n={} median {:.0} us, p10 {:.0} us, p90 {:.0} us", v.len(), q(0.5), q(0.1), q(0.9));
}
