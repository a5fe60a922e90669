//! Mininet as a lab-build peer: one long-lived Python driver, in a network, mount and PID
//! namespace of its own, that builds and stops the same star topology on request.
//!
//! The driver runs under `unshare --net --mount --pid --fork --mount-proc`: Mininet's "root"
//! namespace (where it creates the Linux bridge and every veth before moving one end into a host
//! shell's namespace) is that private network namespace, so nothing lands in the machine's own.
//! Its host shells are in its PID namespace and die with it; its network namespace dies with the
//! last of them. Mininet's `Mininet.init()` (which raises host-wide limits such as
//! `fs.file-max` and `kernel.pty.max` by sysctl) is skipped, and its `cleanup()` (the `mn -c`
//! code, which kills processes by name) is never called. The Python start-up and import are paid
//! once, outside the measurements; each round's build and stop are timed inside the driver with
//! `time.perf_counter`, so no pipe round trip is billed to Mininet.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// The system Python (Debian's `mininet` package installs its module for it, not for a pyenv).
const PYTHON: &str = "/usr/bin/python3";

/// Reads `ROUND N VERIFY` lines; builds N hosts on one Linux bridge, no controller, IPv4 from
/// the documentation prefix 192.0.2.0/24 (Mininet assigns no IPv6); prints build and stop times.
const DRIVER: &str = r#"
import sys, time
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge
from mininet.topo import Topo
from mininet.log import setLogLevel
Mininet.inited = True
setLogLevel('error')
class Star(Topo):
    def build(self, n):
        s = self.addSwitch('s1')
        for i in range(1, n + 1):
            self.addLink(self.addHost('h%d' % i), s)
print('READY', flush=True)
for line in sys.stdin:
    cmd = line.split()
    if len(cmd) != 3:
        continue
    n, verify = int(cmd[1]), cmd[2] == '1'
    t0 = time.perf_counter()
    net = Mininet(topo=Star(n=n), switch=LinuxBridge, controller=None, ipBase='192.0.2.0/24', autoSetMacs=True)
    net.start()
    t1 = time.perf_counter()
    err = ''
    if verify:
        a, b = net.hosts[0], net.hosts[-1]
        out = a.cmd('ping -c1 -W2 %s' % b.IP())
        if ' 0% packet loss' not in out:
            err = 'ping %s -> %s failed: %s' % (a.IP(), b.IP(), out.replace('\n', ' | '))
    t2 = time.perf_counter()
    net.stop()
    t3 = time.perf_counter()
    print('ERR ' + err if err else 'OK %.4f %.4f' % ((t1 - t0) * 1000, (t3 - t2) * 1000), flush=True)
"#;

/// A running driver.
pub(crate) struct Mininet {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    /// `mn --version`, for the report.
    pub version: String,
}

impl Mininet {
    /// Starts the driver and checks one 2-host round; the error says in one line why Mininet
    /// cannot run here.
    pub(crate) async fn start() -> Result<Mininet> {
        for (prog, pkg) in [("mn", "mininet"), ("brctl", "bridge-utils"), ("unshare", "util-linux"), (PYTHON, "python3")] {
            let found = if prog.starts_with('/') { std::path::Path::new(prog).is_file() } else { on_path(prog) };
            if !found {
                bail!("{prog} not found (apt-get install {pkg}, or `bash scripts/setup.sh --bench`)");
            }
        }
        let version = std::process::Command::new("mn")
            .arg("--version")
            .output()
            .map(|o| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)).trim().to_string())
            .unwrap_or_default();
        let mut child = tokio::process::Command::new("unshare")
            .args(["--net", "--mount", "--pid", "--fork", "--mount-proc", "--", PYTHON, "-c", DRIVER])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("spawn unshare")?;
        let stdin = child.stdin.take().expect("piped stdin");
        let lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let mut m = Mininet { child, stdin, lines, version };
        match tokio::time::timeout(Duration::from_secs(30), m.lines.next_line()).await {
            Ok(Ok(Some(l))) if l == "READY" => {}
            _ => bail!("the Mininet driver did not start: {}", m.stderr_tail().await),
        }
        m.round(2, true).await.context("first 2-host round")?;
        Ok(m)
    }

    /// Builds and stops `n` hosts once; returns (build, stop) durations.
    pub(crate) async fn round(&mut self, n: usize, verify: bool) -> Result<(Duration, Duration)> {
        self.stdin.write_all(format!("ROUND {n} {}\n", u8::from(verify)).as_bytes()).await.context("write to the Mininet driver")?;
        // 100 hosts take a few seconds each way; a stuck driver must not hang the bench.
        let line = match tokio::time::timeout(Duration::from_secs(120), self.lines.next_line()).await {
            Ok(Ok(Some(l))) => l,
            Ok(_) => bail!("the Mininet driver exited: {}", self.stderr_tail().await),
            Err(_) => bail!("the Mininet driver did not answer within 120 s for {n} hosts"),
        };
        let Some(rest) = line.strip_prefix("OK ") else { bail!("Mininet: {line}") };
        let ms: Vec<f64> = rest.split_whitespace().filter_map(|s| s.parse().ok()).collect();
        let [b, t] = ms[..] else { bail!("unexpected driver output {line:?}") };
        Ok((Duration::from_secs_f64(b / 1000.0), Duration::from_secs_f64(t / 1000.0)))
    }

    /// The last line of the driver's standard error, once it has exited (or been killed).
    async fn stderr_tail(&mut self) -> String {
        let _ = self.child.start_kill();
        let mut text = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), e.read_to_string(&mut text)).await;
        }
        text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_string()
    }

    /// Closes the driver's input (it ends its loop and exits) and waits for it.
    pub(crate) async fn stop(mut self) {
        drop(self.stdin);
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}
