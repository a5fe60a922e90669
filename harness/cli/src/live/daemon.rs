//! The background process of `nslab up`: builds the lab, keeps it running, serves the control
//! socket, and tears everything down on `nslab down`, SIGTERM, SIGINT or SIGHUP.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Mutex};

use super::control::{DnsRequest, Reply, Request};
use super::{HostState, LabDir, LabState, ProcId};
use nslab::addr::profile::Profile;
use nslab::dns::{QueryLogEntry, RecordKind, RecordValue};
use nslab::host::process::Command;
use nslab_scenario::runner::Session;
use nslab_scenario::scenario::{Action, DnsFault, FaultScope, Scenario, When};

/// What the daemon runs.
#[derive(Debug, Clone)]
pub struct UpSpec {
    /// The lab's files.
    pub lab: LabDir,
    /// The directory of every lab's state (for the /run/netns marker).
    pub state_root: PathBuf,
    /// The scenario (a file of the user's, or one `nslab up --profile` wrote).
    pub scenario: PathBuf,
    /// Its profile.
    pub profile: Profile,
    /// Play the scenario's timeline once the services are up.
    pub timeline: bool,
    /// Where the lab's artifacts go.
    pub artifacts_root: PathBuf,
}

/// Runs the daemon until the lab is brought down. Errors before the lab is up are returned
/// (the daemon's log shows them, and `nslab up` prints that log).
pub async fn serve(spec: UpSpec) -> anyhow::Result<()> {
    let scenario: &'static Scenario = Box::leak(Box::new(nslab_scenario::scenario::load(&spec.scenario)?));
    let session = Session::start(scenario, spec.profile, spec.artifacts_root.clone()).await.map_err(|e| anyhow::Error::msg(e.reason()))?;
    let rootless = nslab::os::rootless::is_rootless();
    // Anchors: a process per host whose namespaces `nslab exec` joins. They die with this
    // daemon (the spawner's lifeline), and everything started in their PID namespaces with them.
    let mut hosts = Vec::new();
    let mut named = Vec::new();
    let mut made_netns_dir = false;
    let setup: anyhow::Result<()> = async {
        for h in session.lab().hosts() {
            let anchor = h.spawn(Command::new("sleep").arg("infinity").name("nslab-anchor")).await?;
            let id = ProcId::of(anchor.pid()).ok_or_else(|| anyhow::anyhow!("the anchor of host {} exited at once", h.name()))?;
            let netns = if rootless {
                None
            } else {
                made_netns_dir |= super::make_netns_dir(&spec.state_root)?;
                let name = super::netns_name(&spec.lab.name, h.name());
                let path = Path::new(super::NETNS_DIR).join(&name);
                // `nslab up` removed what a dead lab of this name under this state root left; a
                // name still taken belongs to another lab (another state root), never replaced.
                nslab::sys::bind_netns(anchor.pid(), &path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => anyhow::anyhow!(
                        "the network namespace name {} is taken, by a lab of the same name under another state directory (NSLAB_STATE_DIR) or by one whose state was removed by hand; choose another --name, or `ip netns delete {name}` if it is a leftover",
                        path.display()
                    ),
                    _ => anyhow::anyhow!("bind {}: {e}", path.display()),
                })?;
                named.push(path);
                Some(name)
            };
            hosts.push(HostState {
                name: h.name().to_string(),
                interface: h.interface().to_string(),
                addrs: h.addrs().iter().map(ToString::to_string).collect(),
                link_local: h.link_local().map(|a| format!("{a}%{}", h.interface())),
                anchor: id,
                netns,
            });
        }
        Ok(())
    }
    .await;
    if let Err(e) = setup {
        unbind_all(&named, &spec.state_root);
        let kept = session.finish().await.map_err(|e| e.reason());
        return Err(e.context(format!("lab artifacts: {kept:?}")));
    }
    let dns = session.lab().dns();
    let state = LabState {
        name: spec.lab.name.clone(),
        daemon: ProcId::of(std::process::id()).ok_or_else(|| anyhow::anyhow!("cannot read this process's own /proc entry"))?,
        rootless,
        scenario: std::fs::canonicalize(&spec.scenario).unwrap_or(spec.scenario.clone()),
        profile: spec.profile.name().to_string(),
        started: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        artifacts: session.lab().artifacts().to_path_buf(),
        dns: dns
            .map(|d| {
                let mut addrs: Vec<String> = Vec::new();
                for (_, a) in d.local_addrs() {
                    if !addrs.contains(&a.to_string()) {
                        addrs.push(a.to_string());
                    }
                }
                addrs
            })
            .unwrap_or_default(),
        zones: dns.map(|d| d.origins()).unwrap_or_default(),
        hosts,
        made_netns_dir,
    };
    let listener = UnixListener::bind(spec.lab.socket())?;
    // Written last, atomically: its presence is what `nslab up` waits for.
    nslab::os::fsafe::Dir::root(&spec.lab.dir, nslab::os::fsafe::Role::State)?.replace_file("state.json", &serde_json::to_vec_pretty(&state)?, 0o600)?;
    eprintln!("lab {} is up: {} host(s), artifacts in {}", state.name, state.hosts.len(), state.artifacts.display());

    let session: Shared = Arc::new(Mutex::new(Some(session)));
    let (stop_tx, stop_rx) = watch::channel(false);
    if spec.timeline {
        tokio::spawn(play_timeline(session.clone(), stop_rx));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    // The connection that asked for `down`, answered once the lab is gone.
    let mut down_conn: Option<UnixStream> = None;
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => break,
            acc = listener.accept() => {
                let Ok((conn, _)) = acc else { continue };
                let mut reader = BufReader::new(conn);
                let mut line = String::new();
                let read = tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line)).await;
                let conn = reader.into_inner();
                if !matches!(read, Ok(Ok(n)) if n > 0) {
                    continue;
                }
                match serde_json::from_str::<Request>(&line) {
                    Ok(Request::Down) => {
                        down_conn = Some(conn);
                        break;
                    }
                    Ok(req) => {
                        tokio::spawn(handle(conn, req, session.clone()));
                    }
                    Err(e) => {
                        let mut conn = conn;
                        let _ = send(&mut conn, &Reply::err(format!("unreadable request: {e}"))).await;
                    }
                }
            }
        }
    }
    // Down: the named namespaces first (so nothing new joins), then the lab.
    let _ = std::fs::remove_file(spec.lab.socket());
    unbind_all(&named, &spec.state_root);
    let _ = stop_tx.send(true);
    let taken = session.lock().await.take();
    let result = match taken {
        Some(s) => s.finish().await.map_err(|e| e.reason()),
        None => Err("the lab was already gone".to_string()),
    };
    // The daemon's log goes with the evidence, when it is kept.
    if let Ok(Some(kept)) = &result {
        if let Ok(log) = std::fs::read(spec.lab.log()) {
            let _ = nslab::os::fsafe::write_artifact(&kept.join("daemon.log"), &log, 0o600);
        }
    }
    let reply = match &result {
        Ok(kept) => Reply::ok(format!("lab {} is down; artifacts kept in {}", state.name, kept.as_deref().unwrap_or(&state.artifacts).display())),
        Err(e) => Reply::err(format!("lab {} came down with an error: {e}", state.name)),
    };
    let _ = std::fs::remove_dir_all(&spec.lab.dir);
    if let Some(mut c) = down_conn {
        let _ = send(&mut c, &reply).await;
    }
    eprintln!("{}", reply.text);
    result.map(|_| ()).map_err(anyhow::Error::msg)
}

fn unbind_all(named: &[PathBuf], state_root: &Path) {
    for p in named {
        if let Err(e) = nslab::sys::unbind_netns(p) {
            eprintln!("nslab: cannot remove {}: {e}", p.display());
        }
    }
    super::remove_netns_dir_if_ours(state_root);
}

async fn send(conn: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_string(reply).unwrap_or_else(|e| format!("{{\"ok\":false,\"text\":\"{e}\"}}"));
    line.push('\n');
    conn.write_all(line.as_bytes()).await
}

/// Plays the scenario's timeline, holding the lab only while a step runs (so commands typed
/// meanwhile are served). Ends early when the lab goes down.
async fn play_timeline(session: Shared, mut stop: watch::Receiver<bool>) {
    let (steps, epoch) = {
        let guard = session.lock().await;
        let Some(s) = guard.as_ref() else { return };
        (&s.scenario().timeline, s.lab().epoch())
    };
    let t0 = epoch.elapsed();
    for (i, step) in steps.iter().enumerate() {
        let wait = match step.when {
            When::At(at) => (t0 + at).saturating_sub(epoch.elapsed()),
            When::AfterPrevious(d) => d,
        };
        let wait = match &step.action {
            Action::Wait { duration } => wait + *duration,
            _ => wait,
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        if matches!(step.action, Action::Wait { .. }) {
            continue;
        }
        let mut guard = session.lock().await;
        let Some(s) = guard.as_mut() else { return };
        match s.step(i).await {
            Ok(()) => eprintln!("+{:.3}s timeline step {} ({}) done", s.lab().elapsed().as_secs_f64(), i + 1, step.action.kind()),
            Err(e) => eprintln!("+{:.3}s timeline: {}", s.lab().elapsed().as_secs_f64(), e.reason()),
        }
    }
    eprintln!("timeline finished");
}

/// The lab, shared by the accept loop, the timeline and requests; `None` once it is going down.
type Shared = Arc<Mutex<Option<Session>>>;

const GONE: &str = "the lab is going down";

async fn handle(mut conn: UnixStream, req: Request, session: Shared) {
    let reply = match req {
        Request::Status => match session.lock().await.as_ref() {
            Some(s) => Reply::ok(status_text(s)),
            None => Reply::err(GONE),
        },
        Request::Down => unreachable!("handled by the accept loop"),
        Request::Dns(DnsRequest::Log { name, since, follow }) => {
            let mut next = since;
            loop {
                let entries = {
                    let guard = session.lock().await;
                    match guard.as_ref().map(|s| s.lab().dns()) {
                        Some(Some(d)) => d.log().entries(),
                        Some(None) => {
                            let _ = send(&mut conn, &Reply::err("this lab has no DNS server")).await;
                            return;
                        }
                        None => {
                            let _ = send(&mut conn, &Reply::ok(String::new())).await;
                            return;
                        }
                    }
                };
                let fresh: Vec<&QueryLogEntry> =
                    entries.iter().skip(next).filter(|e| name.as_deref().is_none_or(|n| e.name.trim_end_matches('.') == n.trim_end_matches('.'))).collect();
                next = entries.len();
                for e in fresh {
                    if send(&mut conn, &Reply { ok: true, text: log_line(e), more: true }).await.is_err() {
                        return;
                    }
                }
                if !follow {
                    let _ = send(&mut conn, &Reply::ok(String::new())).await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Request::Dns(d) => {
            let mut guard = session.lock().await;
            let Some(s) = guard.as_mut() else {
                let _ = send(&mut conn, &Reply::err(GONE)).await;
                return;
            };
            match dns_action(s, d).await {
                Ok(Some(action)) => {
                    let what = format!("{action:?}");
                    match s.act(action).await {
                        Ok(()) => Reply::ok(format!("done at +{:.3}s: {what}", s.lab().elapsed().as_secs_f64())),
                        Err(e) => Reply::err(e.reason()),
                    }
                }
                Ok(None) => Reply::ok(show_zones(s).await),
                Err(e) => Reply::err(e),
            }
        }
    };
    let _ = send(&mut conn, &reply).await;
}

/// One query log entry as a line: time, client, transport, question, answer.
pub fn log_line(e: &QueryLogEntry) -> String {
    format!(
        "{:>9.3}s {} {} {} {} -> {}{}{}",
        e.at.as_secs_f64(),
        e.client,
        e.transport,
        e.name,
        e.qtype.map(|t| t.to_string()).unwrap_or_default(),
        e.rcode_name(),
        if e.answers.is_empty() { String::new() } else { format!(" {}", e.answers.iter().map(ToString::to_string).collect::<Vec<_>>().join(" | ")) },
        e.fault.as_ref().map(|f| format!(" (fault: {f})")).unwrap_or_default()
    )
}

fn status_text(s: &Session) -> String {
    let mut out = String::new();
    for (name, p) in s.services() {
        let state = match p.exit() {
            Some(e) => format!("exited ({e})"),
            None => "running".to_string(),
        };
        out.push_str(&format!("service {name} on {}: {state}, pid {}, log {}\n", p.host(), p.pid(), p.stdout_path().display()));
    }
    if let Some(d) = s.lab().dns() {
        out.push_str(&format!("dns: {} queries logged\n", d.log().len()));
    }
    out
}

async fn show_zones(s: &Session) -> String {
    let Some(d) = s.lab().dns() else { return "this lab has no DNS server".into() };
    let mut out = String::new();
    for origin in d.origins() {
        if let Ok(z) = d.zone(&origin) {
            for r in z.dump().await {
                out.push_str(&r);
                out.push('\n');
            }
        }
    }
    out
}

/// Where a name typed on the command line belongs: `(zone, owner)`, the owner absolute
/// (trailing dot) when the name was written with its zone.
fn place(s: &Session, name: &str) -> Result<(String, String), String> {
    let dns = s.lab().dns().ok_or("this lab has no DNS server")?;
    let origins = dns.origins();
    let bare = name.trim_end_matches('.');
    if let Some(z) = origins.iter().find(|o| bare == o.as_str() || bare.ends_with(&format!(".{o}"))) {
        return Ok((z.clone(), format!("{bare}.")));
    }
    // A relative name: the one zone of the scenario (the lab's own lab.test aside).
    let own: Vec<&String> = origins.iter().filter(|o| o.as_str() != nslab::LAB_DOMAIN).collect();
    match own.as_slice() {
        [z] => Ok(((*z).clone(), bare.to_string())),
        [] => Ok((nslab::LAB_DOMAIN.to_string(), bare.to_string())),
        _ => Err(format!("{name:?} is in none of the zones by its suffix, and there are several; write it whole, in one of: {}", origins.join(", "))),
    }
}

/// A CNAME target typed on the command line: absolute when written with a zone.
fn target_name(s: &Session, name: &str) -> String {
    let bare = name.trim_end_matches('.');
    let origins = s.lab().dns().map(|d| d.origins()).unwrap_or_default();
    if name.ends_with('.') || origins.iter().any(|o| bare == o.as_str() || bare.ends_with(&format!(".{o}"))) {
        format!("{bare}.")
    } else {
        bare.to_string()
    }
}

fn rtype(text: &str) -> Result<RecordKind, String> {
    text.parse::<RecordKind>().map_err(|e| e.to_string())
}

/// The timeline action a DNS request means (`None`: show the zones).
async fn dns_action(s: &Session, d: DnsRequest) -> Result<Option<Action>, String> {
    Ok(Some(match d {
        DnsRequest::Set { name, rtype: t, value, ttl } => {
            let (zone, record) = place(s, &name)?;
            let data = if t.eq_ignore_ascii_case("host") {
                s.lab().host(&value).map_err(|e| e.to_string())?;
                RecordValue::Host(value)
            } else {
                let ty = rtype(&t)?;
                let value = if matches!(ty, RecordKind::Cname | RecordKind::Ns | RecordKind::Ptr) { target_name(s, &value) } else { value };
                nslab_scenario::scenario::parse_record_value(ty, &value)?
            };
            Action::SetRecord { zone, record, data, ttl: ttl.unwrap_or(nslab_scenario::scenario::DEFAULT_TTL) }
        }
        DnsRequest::Swap { name, target } => {
            let (zone, record) = place(s, &name)?;
            Action::SwapCname { zone, record, to: target_name(s, &target) }
        }
        DnsRequest::Delete { name, rtype: t } => {
            let (zone, record) = place(s, &name)?;
            Action::DeleteRecord { zone, record, rtype: t.as_deref().map(rtype).transpose()? }
        }
        DnsRequest::Ttl { name, rtype: t, ttl } => {
            let (zone, record) = place(s, &name)?;
            Action::SetTtl { zone, record, rtype: rtype(&t)?, ttl }
        }
        DnsRequest::Fault { fault, delay, scope } => {
            let f = DnsFault::from_name(&fault, delay)?.ok_or("the delay fault needs --delay, for example --delay 2s")?;
            let scope = match scope {
                None => FaultScope::Server,
                Some(n) => match n.strip_prefix("*.") {
                    Some(suffix) => FaultScope::Suffix(place(s, suffix)?.1.trim_end_matches('.').to_string()),
                    None => {
                        let (zone, owner) = place(s, &n)?;
                        let abs = if owner.ends_with('.') { owner.trim_end_matches('.').to_string() } else { format!("{owner}.{zone}") };
                        FaultScope::Name(abs)
                    }
                },
            };
            Action::DnsFault { fault: f, scope }
        }
        DnsRequest::Clear => Action::ClearDnsFaults,
        DnsRequest::Show => return Ok(None),
        DnsRequest::Log { .. } => unreachable!("streamed by handle"),
    }))
}
