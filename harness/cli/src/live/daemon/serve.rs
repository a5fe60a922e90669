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
use super::error::DaemonError;
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
///
/// # Errors
/// The scenario unreadable, the lab or a host's anchor not coming up (what was built is torn
/// down again), the state not written; or the lab's teardown failing.
pub async fn serve(spec: UpSpec) -> Result<(), DaemonError> {
    let scenario: &'static Scenario = Box::leak(Box::new(nslab_scenario::scenario::load(&spec.scenario)?));
    let session = Session::start(scenario, spec.profile, spec.artifacts_root.clone()).await.map_err(|e| DaemonError::Lab(e.reason()))?;
    let rootless = nslab::os::rootless::is_rootless();
    // Anchors: a process per host whose namespaces `nslab exec` joins, named as root.
    let mut anchored = Anchored::default();
    let up = match anchor_hosts(&session, &spec.lab.name, &spec.state_root, rootless, &mut anchored).await {
        Ok(()) => publish(&spec, &session, rootless, &mut anchored),
        Err(e) => Err(e),
    };
    let Anchored { named, .. } = anchored;
    let (state, listener) = match up {
        Ok(up) => up,
        Err(e) => {
            unbind_all(&named, &spec.state_root);
            let kept = session.finish().await.map_err(|e| e.reason());
            return Err(DaemonError::Setup { kept: format!("{kept:?}"), source: Box::new(e) });
        }
    };
    eprintln!("lab {} is up: {} host(s), artifacts in {}", state.name, state.hosts.len(), state.artifacts.display());

    let session: Shared = Arc::new(Mutex::new(Some(session)));
    let (stop_tx, stop_rx) = watch::channel(false);
    if spec.timeline {
        tokio::spawn(play_timeline(session.clone(), stop_rx));
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).map_err(DaemonError::io("watch for SIGTERM"))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map_err(DaemonError::io("watch for SIGINT"))?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).map_err(DaemonError::io("watch for SIGHUP"))?;
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
    result.map(|_| ()).map_err(DaemonError::Lab)
}

/// Makes the lab findable once it is up: its control socket bound, then its `state.json`
/// written, last and atomically (its presence is what `nslab up` waits for).
fn publish(spec: &UpSpec, session: &Session, rootless: bool, anchored: &mut Anchored) -> Result<(LabState, UnixListener), DaemonError> {
    let dns = session.lab().dns();
    let state = LabState {
        name: spec.lab.name.clone(),
        daemon: ProcId::of(std::process::id()).ok_or_else(|| DaemonError::Lab("cannot read this process's own /proc entry".into()))?,
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
        hosts: std::mem::take(&mut anchored.hosts),
        made_netns_dir: anchored.made_netns_dir,
    };
    let socket = spec.lab.socket();
    let listener = UnixListener::bind(&socket).map_err(DaemonError::io(format!("bind the control socket {}", socket.display())))?;
    nslab::os::fsafe::Dir::root(&spec.lab.dir, nslab::os::fsafe::Role::State)?.replace_file("state.json", &serde_json::to_vec_pretty(&state)?, 0o600)?;
    Ok((state, listener))
}
