//! Evaluates `output`: a service's complete output, read after it stopped.

use std::collections::BTreeMap;

use super::observed::{proc, tail};
use crate::scenario::{OutputCheck, OutputStream};
use nslab::host::output::Stream;
use nslab::host::process::Process;

pub(super) fn check(c: &OutputCheck, procs: &BTreeMap<String, Process>) -> Result<String, String> {
    output(procs, &c.service, c.stream, c.matches.as_ref(), c.not_matches.as_ref())
}

fn text_of(p: &Process, stream: OutputStream) -> String {
    match stream {
        OutputStream::Stdout => p.stdout(),
        OutputStream::Stderr => p.stderr(),
        OutputStream::Both => p.lines().iter().filter(|l| matches!(l.stream, Stream::Stdout | Stream::Stderr)).map(|l| l.text.clone() + "\n").collect(),
    }
}

fn output(
    procs: &BTreeMap<String, Process>,
    service: &str,
    stream: OutputStream,
    matches: Option<&regex::Regex>,
    not_matches: Option<&regex::Regex>,
) -> Result<String, String> {
    let p = proc(procs, service)?;
    let text = text_of(p, stream);
    let mut seen = Vec::new();
    if let Some(re) = matches {
        match text.lines().find(|l| re.is_match(l)) {
            Some(l) => seen.push(format!("matching line {l:?}")),
            None => return Err(format!("no line matches /{}/; output:{}", re.as_str(), tail(&text))),
        }
    }
    if let Some(re) = not_matches {
        if let Some(l) = text.lines().find(|l| re.is_match(l)) {
            return Err(format!("line {l:?} matches /{}/", re.as_str()));
        }
        seen.push(format!("no line matches /{}/", re.as_str()));
    }
    Ok(seen.join("; "))
}
