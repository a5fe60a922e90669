//! `nslab matrix` through the command itself, on small scenarios: rows are the programs
//! under test, a cell keeps "the test held" apart from "the program worked", names the errno
//! and cause of a failed start without strace, the listeners and the time to the first request
//! with its family, links its kept artifacts, and the exit code says a test did not hold; a
//! socket is judged against the families its host's profile gives, and a server against the
//! families its peers have (an IPv4-only listener on ipv6-only fails, on dual-stack works partly);
//! a daemon on a client's host is not credited with the client's requests.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use libtest_mimic::Arguments;
use nslab_tests::{ensure, trial_requiring};

fn main() -> std::process::ExitCode {
    nslab_tests::enter_rootless();
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let trials = vec![
        trial_requiring("matrix/md-and-json-from-two-scenarios", &["python3", "curl"], md_and_json),
        trial_requiring("matrix/listeners-judged-against-the-hosts-profile", &["python3"], v6only_on_ipv4_only),
        trial_requiring("matrix/a-daemon-on-the-client-host-is-no-client", &["curl"], daemon_is_no_client),
        trial_requiring("matrix/a-server-is-judged-against-the-families-its-peers-have", &["python3"], judged_by_peer_families),
    ];
    nslab_tests::run_checking_host(&args, trials)
}

const BIND: &str = r#"description = "python3 http.server bound to ::1. It cannot start where the host has no IPv6."
program = "python3"
profiles = ["ipv4-only", "dual-stack"]
timeout = "20s"

[requires]
python3 = "*"

[hosts.server]

[services.web]
host = "server"
command = ["python3", "-m", "http.server", "8000", "--bind", "::1"]
ready = { listening = "tcp:[::1]:8000" }
expect_start = { ipv4-only = "failure", default = "success" }

[[expect]]
kind = "connect"
profiles = ["dual-stack"]
from = "server"
to = "[::1]:8000"
result = "ok"
"#;

const FETCH: &str = r#"description = "curl fetches from a dual-stack server by name. The exit code expected is wrong on purpose."
profiles = ["dual-stack"]
timeout = "20s"

[requires]
curl = "*"

[hosts.server]
[hosts.client]

[dns]
[[dns.zones]]
origin = "example.test"
records = [{ name = "app", host = "server", ttl = 60 }]

[targets.web]
host = "server"
port = 8080

[services.curl]
host = "client"
command = ["curl", "-sS", "--max-time", "5", "http://app.example.test:8080/"]
ready = { exit = true }

[[expect]]
name = "deliberately wrong: curl exits 7"
kind = "exit"
service = "curl"
code = 7
"#;

const V6ONLY: &str = r#"description = "python3 listening on [::]:8000 with IPV6_V6ONLY=1."
program = "python3"
profiles = ["ipv4-only", "dual-stack"]
timeout = "20s"

[requires]
python3 = "*"

[hosts.server]

[services.web]
host = "server"
command = ["python3", "-c", "import socket, time\ns = socket.socket(socket.AF_INET6)\ns.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)\ns.bind(('::', 8000))\ns.listen()\nprint('listening', flush=True)\ntime.sleep(60)"]
ready = { line = "^listening" }
"#;

/// A `[::]` socket with V6ONLY=1 exists on ipv4-only too, but IPv6 is off there: the matrix
/// (and the listener report under it) must not say it takes IPv6 peers (issue 15).
async fn v6only_on_ipv4_only() -> Result<(), String> {
    let m = matrix_holding(&[("v6only.toml", V6ONLY)])?;
    let cells = &m["rows"][0]["cases"][0]["cells"];
    let web = |p: &str| cells[p]["services"][0].clone();
    ensure!(web("ipv4-only")["listens"] == serde_json::json!(["tcp [::]:8000 v6only=1"]), "the socket is there on ipv4-only: {m}");
    ensure!(web("ipv4-only")["listens_families"] == serde_json::json!([]), "IPv6 is off on ipv4-only: it takes no family: {m}");
    ensure!(web("dual-stack")["listens_families"] == serde_json::json!(["ipv6"]), "on dual-stack it takes IPv6: {m}");
    Ok(())
}

const DAEMON: &str = r#"description = "A curl loop and an idle daemon on one host; only curl is a client of the target."
program = "curl"
profiles = ["dual-stack"]
timeout = "20s"

[requires]
curl = "*"

[hosts.server]
[hosts.client]

[dns]
[[dns.zones]]
origin = "example.test"
records = [{ name = "app", host = "server", ttl = 60 }]

[targets.web]
host = "server"
port = 8080

[services.daemon]
host = "client"
shell = "echo up; exec sleep 60"
ready = { line = "^up$" }

[services.curl-loop]
host = "client"
shell = """
for i in $(seq 20); do
  curl -s --max-time 1 http://app.example.test:8080/
  sleep 0.2
done
"""
ready = { line = "^web$" }

[[timeline]]
name = "a-while"
action = "wait"
duration = "2s"
"#;

/// A daemon on the client's host made no request: the matrix (and results.json under it) must
/// not show it as a client with the curl loop's figures (issue 15: `first_requests` credited
/// every service of a host with the host's requests).
async fn daemon_is_no_client() -> Result<(), String> {
    let m = matrix_holding(&[("daemon.toml", DAEMON)])?;
    let cell = &m["rows"][0]["cases"][0]["cells"]["dual-stack"];
    let clients: Vec<&str> = cell["first_requests"].as_array().map(|a| a.iter().filter_map(|f| f["client"].as_str()).collect()).unwrap_or_default();
    ensure!(clients == ["curl-loop"], "only the curl loop reached the target, not the daemon beside it: {cell}");
    ensure!(cell["first_requests"][0]["attributed"] == "service", "the built-in target saw curl's process make the connection: {cell}");
    Ok(())
}

const WILDCARD_V4: &str = r#"description = "python3 http.server bound to 0.0.0.0, as gunicorn with PORT. Peers over IPv6 are refused."
program = "python3"
profiles = ["ipv4-only", "dual-stack", "ipv6-only"]
timeout = "20s"

[requires]
python3 = "*"

[hosts.server]
[hosts.client]

[services.web]
host = "server"
command = ["python3", "-m", "http.server", "8000", "--bind", "0.0.0.0"]
ready = { listening = "tcp:0.0.0.0:8000" }

[[expect]]
kind = "connect"
profiles = ["dual-stack", "ipv6-only"]
from = "client"
to = "server:8000"
family = "ipv6"
result = "ECONNREFUSED"
"#;

const DUAL_ON_BROKEN: &str = r#"description = "python3 http.server bound to [::] with V6ONLY=0 where the IPv6 path is broken."
program = "python3"
profiles = ["dual-stack", "broken-ipv6"]
timeout = "20s"

[requires]
python3 = "*"

[hosts.server]
[hosts.client]

[services.web]
host = "server"
command = ["python3", "-m", "http.server", "8001", "--bind", "::"]
ready = { listening = "tcp:[::]:8001" }

[[expect]]
kind = "connect"
profiles = ["broken-ipv6"]
from = "client"
to = "server:8001"
family = "ipv6"
timeout = "2s"
result = "timeout"
"#;

/// The matrix judges a server against the families its peers have (issue 15): 0.0.0.0 only is
/// `fails` on ipv6-only (every peer refused over IPv6), `partly` on dual-stack, `works` on
/// ipv4-only, each said in words; and on broken-ipv6, where no IPv6 packet of a peer arrives
/// (the connect expectation shows it hang), a `[::]` socket is not reported to take IPv6.
async fn judged_by_peer_families() -> Result<(), String> {
    let m = matrix_holding(&[("a-wildcard-v4.toml", WILDCARD_V4), ("b-dual-on-broken.toml", DUAL_ON_BROKEN)])?;
    let case = |n: usize, p: &str| m["rows"][0]["cases"][n]["cells"][p].clone();
    let verdict = |n: usize, p: &str| (case(n, p)["test"].clone(), case(n, p)["program"].clone(), case(n, p)["services"][0]["peers"].clone());
    let want = |program: &str, words: &str| (serde_json::json!("passed"), serde_json::json!(program), serde_json::json!(words));
    ensure!(verdict(0, "ipv4-only") == want("works", "peers reach it over IPv4"), "0.0.0.0 on ipv4-only: {m}");
    ensure!(verdict(0, "dual-stack") == want("partly", "peers reach it over IPv4 only, not over IPv6, which its peers have"), "0.0.0.0 on dual-stack: {m}");
    ensure!(
        verdict(0, "ipv6-only") == want("fails", "unreachable from its peers over IPv6, the only family its peers have here"),
        "0.0.0.0 on ipv6-only, every peer refused over IPv6: {m}"
    );
    ensure!(case(1, "dual-stack")["services"][0]["listens_families"] == serde_json::json!(["ipv4", "ipv6"]), "[::] takes both on dual-stack: {m}");
    ensure!(case(1, "broken-ipv6")["services"][0]["listens_families"] == serde_json::json!(["ipv4"]), "no IPv6 peer reaches it on broken-ipv6: {m}");
    ensure!(verdict(1, "broken-ipv6") == want("works", "peers reach it over IPv4"), "IPv4, the family that works, reaches it on broken-ipv6: {m}");
    Ok(())
}

/// `nslab matrix --format json` over the scenario files `files` (name, content) in a fresh
/// temporary folder, where every test must hold (exit 0): the parsed report.
fn matrix_holding(files: &[(&str, &str)]) -> Result<serde_json::Value, String> {
    let bin = nslab_tests::nslab_bin()?;
    let dir = tempfile::Builder::new().prefix("nslab-matrix-").tempdir().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.path().join("scenarios")).map_err(|e| e.to_string())?;
    for (name, text) in files {
        std::fs::write(dir.path().join("scenarios").join(name), text).map_err(|e| e.to_string())?;
    }
    let child = Command::new(&bin)
        .args(["matrix", "--format", "json", "--artifacts"])
        .arg(dir.path().join("artifacts"))
        .arg(dir.path().join("scenarios"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nslab matrix: {e}"))?;
    let out = nslab_tests::output_bounded(child, "nslab matrix", nslab_tests::COMMAND_BOUND)?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(out.status.success(), "every test holds: exit 0 expected, got {}:\n{stderr}", out.status);
    serde_json::from_slice(&out.stdout).map_err(|e| format!("JSON: {e}\n{stderr}"))
}

fn run(bin: &Path, dir: &Path, format: &str) -> Result<(Output, String), String> {
    let art = dir.join(format!("artifacts-{format}"));
    let out = Command::new(bin)
        .args(["matrix", "--format", format, "--artifacts"])
        .arg(&art)
        .arg(dir.join("scenarios"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("nslab matrix: {e}"))?;
    let out = nslab_tests::output_bounded(out, "nslab matrix", nslab_tests::COMMAND_BOUND)?;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    ensure!(out.status.code() == Some(1), "nslab matrix exits 1 when a test did not hold; got {}:\n{stderr}", out.status);
    ensure!(stderr.contains(&format!("artifacts kept under {}", art.display())), "the artifact root is printed:\n{stderr}");
    Ok((out, stderr))
}

async fn md_and_json() -> Result<(), String> {
    let bin = nslab_tests::nslab_bin()?;
    let dir = tempfile::Builder::new().prefix("nslab-matrix-").tempdir().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.path().join("scenarios")).map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("scenarios/bind.toml"), BIND).map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("scenarios/fetch.toml"), FETCH).map_err(|e| e.to_string())?;

    let (out, stderr) = run(&bin, dir.path(), "json")?;
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("JSON: {e}\n{stderr}"))?;
    ensure!(m["schema"] == 2, "schema 2: {m}");
    ensure!(m["profiles"] == serde_json::json!(["ipv4-only", "dual-stack"]), "columns are profiles: {}", m["profiles"]);
    let row = |p: &str| m["rows"].as_array().and_then(|rows| rows.iter().find(|r| r["program"] == p)).cloned().ok_or_else(|| format!("no row for {p}: {m}"));
    let py = row("python3")?;
    ensure!(py["version"].as_str().is_some_and(|v| v.starts_with("3.")), "python3's version is detected: {}", py["version"]);
    let v4 = &py["cases"][0]["cells"]["ipv4-only"];
    ensure!(v4["test"] == "passed" && v4["program"] == "fails", "on ipv4-only the test holds and the program fails: {v4}");
    let web = &v4["services"][0];
    ensure!(
        web["started"] == false && web["errno"] == "EADDRNOTAVAIL" && web["cause"] == "address-not-on-host",
        "the failed start has its errno and cause: {web}"
    );
    ensure!(
        web["evidence"].as_str().is_some_and(|e| e.contains("[Errno 99]") && e.contains("no IPv6 address")),
        "with the output line and the lab fact: {web}"
    );
    let art = v4["artifacts"].as_str().ok_or_else(|| format!("no artifacts: {v4}"))?;
    ensure!(Path::new(art).join("results.json").is_file(), "the linked artifacts are kept: {art}");
    let ds = &py["cases"][0]["cells"]["dual-stack"];
    ensure!(ds["test"] == "passed" && ds["program"] == "works", "on dual-stack it works: {ds}");
    ensure!(ds["services"][0]["listens_families"] == serde_json::json!(["ipv6"]), "it takes IPv6 peers only: {ds}");
    ensure!(ds["reachable"][0]["result"] == "ok", "and is reachable: {ds}");

    let curl = row("curl")?;
    let c = &curl["cases"][0]["cells"]["dual-stack"];
    ensure!(c["test"] == "failed" && c["program"] == "works", "a test that did not hold is not a broken program: {c}");
    let fr = &c["first_requests"][0];
    ensure!(fr["target"] == "web" && fr["family"] == "ipv6", "curl reaches the target over IPv6 first on dual-stack: {c}");
    // Measured from its DNS query, which came after its start: never negative, never more than
    // the time since its start (an order of events, not a speed).
    let (from_query, from_start) = (fr["after_dns_query_s"].as_f64(), fr["after_start_s"].as_f64());
    ensure!(from_query.zip(from_start).is_some_and(|(q, s)| 0.0 <= q && q <= s), "time to connect is measured from its DNS query, after its start: {fr}");

    let (out, stderr) = run(&bin, dir.path(), "md")?;
    let md = String::from_utf8_lossy(&out.stdout);
    ensure!(md.starts_with("| program | case | ipv4-only | dual-stack |\n"), "markdown header:\n{md}\n{stderr}");
    for want in [
        "| **python3** 3.",
        "✅ test held; program fails<br>web: fails to start, EADDRNOTAVAIL (address-not-on-host)",
        "❌ test failed; program works",
        " over IPv6",
        "server -> [::1]:8000: reachable",
        "[artifacts](file://",
    ] {
        ensure!(md.contains(want), "the markdown has {want:?}:\n{md}");
    }
    Ok(())
}
