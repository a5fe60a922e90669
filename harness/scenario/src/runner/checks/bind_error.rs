//! Evaluates `bind-error`: a failed bind, as a service's complete output shows it.

use std::collections::BTreeMap;

use super::observed::{proc, tail};
use crate::scenario::{BindErrorCheck, Errno};
use nslab::host::process::Process;

pub(super) fn check(c: &BindErrorCheck, procs: &BTreeMap<String, Process>) -> Result<String, String> {
    bind_error(procs, &c.service, c.errno, c.message.as_deref())
}

/// A bind failure shows in a program's output as the errno's text or number, in the forms
/// programs print it: `Address already in use`, `[Errno 98]`, `(98: ...)`, `errno 98`.
fn bind_error(procs: &BTreeMap<String, Process>, service: &str, errno: Errno, message: Option<&str>) -> Result<String, String> {
    let p = proc(procs, service)?;
    let text = p.output();
    let desc = nix::errno::Errno::from_raw(errno.number).desc();
    let n = errno.number;
    let forms = [desc.to_string(), format!("[Errno {n}]"), format!("({n}:"), format!("errno {n}"), format!("errno={n}"), errno.name.to_string()];
    let line = text.lines().find(|l| forms.iter().any(|f| l.contains(f.as_str())));
    let Some(line) = line else {
        return Err(format!("no line shows {} ({n}, \"{desc}\"); output:{}", errno.name, tail(&text)));
    };
    if let Some(m) = message {
        if !text.contains(m) {
            return Err(format!("saw {line:?} but no {m:?} in the output"));
        }
    }
    Ok(format!("{line:?}"))
}
