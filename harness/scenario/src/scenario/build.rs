//! `[build.<name>]`: a command run once before the trials that use its output (`{{build.<name>}}`),
//! its output cached by a hash of what it reads (the runner's `runner::build` runs and caches it).

use std::path::PathBuf;
use std::time::Duration;

use super::decode::{Doc, Result, Str, Table, Val};
use super::known::{relative_path, resolve_path};
use super::template::{Scope, Template};

/// How long a build may run unless its `timeout` says otherwise.
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(120);

const BUILD_KEYS: &[&str] = &["command", "inputs", "timeout"];

/// A build: a program that writes files into its output directory (`{{out}}`, also its working
/// directory), from files of the scenario's folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildDef {
    /// Its name, as `{{build.<name>}}` refers to it.
    pub name: String,
    /// The program and its arguments; only `{{out}}` and `{{scenario_dir}}` are variables here.
    pub command: Vec<Template>,
    /// The files it reads, in file order: their contents are part of its cache key.
    pub inputs: Vec<BuildInput>,
    /// How long it may run (real time: a build is never in a trial's scaled time).
    pub timeout: Duration,
}

/// A file a build reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInput {
    /// As written: relative to the scenario's folder (in the cache key, so a moved folder with the
    /// same files keeps its builds when the command does not name the folder).
    pub path: PathBuf,
    /// Its canonical path, checked to be a regular file inside the scenario's folder.
    pub source: PathBuf,
}

/// Reads `[build]`, in file order.
pub(crate) fn decode_builds(doc: &Doc<'_>, v: Val<'_>) -> Result<Vec<BuildDef>> {
    let mut t = Table::new(doc, "[build]", v, "a table of builds such as [build.client]")?;
    let mut out = Vec::new();
    for (name, v) in t.take_all() {
        nslab::lab::spec::check_name("build", &name.value).map_err(|e| doc.err(&name.span, e))?;
        out.push(decode_build(doc, name.value, v)?);
    }
    Ok(out)
}

fn decode_build(doc: &Doc<'_>, name: String, v: Val<'_>) -> Result<BuildDef> {
    let mut t = Table::new(doc, format!("build {name:?}"), v, "a table such as [build.client] with command = [\"javac\", \"-d\", \"{{out}}\", \"...\"]")?;
    t.check_keys(BUILD_KEYS)?;
    let expected = "an array of strings such as [\"javac\", \"-d\", \"{{out}}\", \"{{scenario_dir}}/files/Client.java\"]";
    let (span, items) = match t.str_list("command", expected)? {
        Some(c) => c,
        None => return Err(t.missing("command", "[\"javac\", \"-d\", \"{{out}}\", \"{{scenario_dir}}/files/Client.java\"]")),
    };
    if items.is_empty() {
        return Err(t.bad("command", &span, "the array is empty; expected the program and its arguments"));
    }
    let command = items.iter().map(|s| command_text(&t, s)).collect::<Result<Vec<_>>>()?;
    if command[0].vars().next().is_some() || command[0].source().trim().is_empty() {
        return Err(t.bad(
            "command",
            &items[0].span,
            format!("the program {:?} is not a plain name or path; expected a program such as \"javac\" (found on PATH) or \"/usr/bin/javac\"", items[0].value),
        ));
    }
    let mut inputs = Vec::new();
    let list = t.str_list("inputs", "an array of paths relative to the scenario's folder, such as [\"files/Client.java\"]")?;
    if let Some((_, list)) = list {
        super::decode::check_unique(doc, "input", &list)?;
        for s in &list {
            let path = relative_path(&s.value).map_err(|why| {
                t.bad(
                    "inputs",
                    &s.span,
                    format!("{:?} {why}; expected a path relative to the scenario's folder, inside it, such as \"files/Client.java\"", s.value),
                )
            })?;
            let source = resolve_path(doc, &t, "inputs", s)?;
            inputs.push(BuildInput { path, source });
        }
    }
    let timeout = t.positive_duration("timeout")?.unwrap_or(DEFAULT_BUILD_TIMEOUT);
    Ok(BuildDef { name, command, inputs, timeout })
}

/// A word of a build's command: a template of `{{out}}` and `{{scenario_dir}}` only, without NUL.
fn command_text(t: &Table<'_, '_>, s: &Str) -> Result<Template> {
    if let Some(at) = s.value.find('\0') {
        let span = t.doc.inner_span(s, at..at + 1);
        return Err(t.doc.err(
            &span,
            format!("command in {}: the text contains a NUL byte (\\u0000); expected text without NUL, which a program's arguments cannot hold", t.what),
        ));
    }
    let none = Default::default();
    let scope = Scope { hosts: &none, dns: false, builds: &none, in_build: true };
    Template::parse(&s.value, &scope).map_err(|e| {
        let span = t.doc.inner_span(s, e.range);
        t.doc.err(&span, format!("command in {}: {}", t.what, e.message))
    })
}
