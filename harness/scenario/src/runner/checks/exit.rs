//! Evaluates `exit`: how the service ended.

use std::collections::BTreeMap;
use std::time::Duration;

use super::observed::{proc, Observed};
use crate::scenario::ExitCheck;
use nslab::host::process::Process;

pub(super) async fn check(c: &ExitCheck, o: &Observed<'_>) -> Result<String, String> {
    check_exit(o.procs, &c.service, c.code, c.success).await
}

/// Waits for the service to exit, with no bound of its own: the trial's deadline in
/// [`super::evaluate`] decides, so a program still running then is undecided, never "failed"
/// by a second timer that happened to fire in the same tick.
async fn check_exit(procs: &BTreeMap<String, Process>, service: &str, code: Option<i32>, success: Option<bool>) -> Result<String, String> {
    let p = proc(procs, service)?;
    // Duration::MAX: tokio waits without a deadline (far future).
    let exit = p.wait_exit(Duration::MAX).await.map_err(|e| e.to_string())?;
    let ok = code.is_none_or(|c| exit.code() == Some(c)) && success.is_none_or(|s| exit.success() == s);
    let observed = format!("exited: {exit}");
    if ok {
        Ok(observed)
    } else {
        Err(observed)
    }
}
