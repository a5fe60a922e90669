//! The daemon's life: the lab built, its state written, requests served until it goes down,
//! then everything torn down and the answer given.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nslab::addr::profile::Profile;
use nslab::os::procid::ProcId;
use nslab_scenario::runner::Session;
use nslab_scenario::scenario::Scenario;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Mutex};

use super::anchors::{anchor_hosts, unbind_all, Anchored};
use super::handler::{handle, send, Shared};
use super::timeline::play_timeline;
use crate::live::protocol::{Reply, Request};
use crate::live::state::{LabDir, LabState};

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
    let session = Session::start(scenario, spec.profile, spec.artifacts_root.clone()).await.map_err(anyhow::Error::msg)?;
    let rootless = nslab::os::rootless::is_rootless();
    // Anchors: a process per host whose namespaces `nslab exec` joins, named as root.
    let mut anchored = Anchored::default();
    if let Err(e) = anchor_hosts(&session, &spec.lab.name, &spec.state_root, rootless, &mut anchored).await {
        unbind_all(&anchored.named, &spec.state_root);
        let kept = session.finish().await;
        return Err(e.context(format!("lab artifacts: {kept:?}")));
    }
    let Anchored { hosts, named, made_netns_dir } = anchored;
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
        Some(s) => s.finish().await,
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
