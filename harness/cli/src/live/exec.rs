//! Running a command inside a host of a running lab, in this process's place.

use super::error::LiveError;
use super::state::LabDir;

/// Runs `argv` inside host `host` of a running lab: its network, mount (its /etc files, /run, /tmp), UTS
/// (its host name) and PID namespaces, with the caller's terminal. Returns the exit code to
/// pass on (128 + N for a signal).
///
/// Must be called while the process has a single thread (it joins the host's namespaces).
pub fn exec(lab: &LabDir, host: &str, argv: &[String], env: &[(String, String)]) -> Result<i32, LiveError> {
    let st = lab.live_state()?;
    let h = st.host(host)?;
    if !h.anchor.alive() {
        return Err(LiveError::Refused(format!(
            "host {host} of lab {} has lost its anchor process (pid {}); bring the lab down and up again",
            st.name, h.anchor.pid
        )));
    }
    let (prog, args) = argv.split_first().ok_or_else(|| LiveError::Refused("no command given; expected `nslab exec LAB HOST -- COMMAND [ARGS...]`".into()))?;
    nslab::sys::enter_namespaces_of(h.anchor.pid).map_err(LiveError::io(format!("join the namespaces of host {host} (anchor pid {})", h.anchor.pid)))?;
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args).env("NSLAB_LAB", &st.name).env("NSLAB_HOST", host);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(LiveError::io(format!("run {prog} in host {host}")))?;
    // The terminal's Ctrl-C and Ctrl-\ reach the command (same process group); this process
    // only waits for it and passes its status on.
    let mut set = nix::sys::signal::SigSet::empty();
    set.add(nix::sys::signal::Signal::SIGINT);
    set.add(nix::sys::signal::Signal::SIGQUIT);
    let _ = set.thread_block();
    let status = child.wait().map_err(LiveError::io(format!("wait for {prog}")))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}
