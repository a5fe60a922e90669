//! `[services.<name>]`: real programs on lab hosts, their files, readiness and expected start.

use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeValue;

use super::decode::{int_of, Doc, Result, Str, Table, Val};
use super::known::{refer, regex, relative_path, resolve_source, template, Known};
use super::template::Template;
use super::values::ListenSpec;

/// How long a service may take to become ready, unless `ready_timeout` says otherwise.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(10);

const SERVICE_KEYS: &[&str] =
    &["host", "command", "shell", "env", "cwd", "files", "ready", "ready_timeout", "expect_start", "autostart", "stop_grace", "trace", "profiles"];
const FILE_KEYS: &[&str] = &["path", "content", "source"];

/// A program run in a lab host.
#[derive(Debug, Clone)]
pub struct ServiceDef {
    /// The service's name.
    pub name: String,
    /// The host it runs in.
    pub host: String,
    /// What to run.
    pub run: Run,
    /// Extra environment variables, in file order.
    pub env: Vec<(String, Template)>,
    /// Working directory; `None`: the service's own directory (`{{service_dir}}`).
    pub cwd: Option<Template>,
    /// Files written into the service's directory before it starts.
    pub files: Vec<FileDef>,
    /// When the service counts as started; `None`: as soon as it is spawned.
    pub ready: Option<Condition>,
    /// How long to wait for `ready`.
    pub ready_timeout: Duration,
    /// Whether it must start, or must fail to (exit before it is ready).
    pub expect_start: ExpectStart,
    /// Per-profile start expectations that override `expect_start`
    /// (`expect_start = { no-ipv6 = "failure", default = "success" }`).
    pub expect_start_in: Vec<(nslab::addr::profile::Profile, ExpectStart)>,
    /// Started with the lab (`true`) or by a timeline `start` step.
    pub autostart: bool,
    /// How long `stop` waits after SIGTERM before SIGKILL; `None`: the runner's default.
    pub stop_grace: Option<Duration>,
    /// Record its socket, bind, connect and listen calls (under strace) for diagnosis.
    pub trace: bool,
    /// The trial profiles it exists in; `None`: every profile of the scenario. In the others it
    /// is not started, not reported and not in `resolved.json`.
    pub profiles: Option<Vec<nslab::addr::profile::Profile>>,
}

impl ServiceDef {
    /// Whether the service exists in a trial with `profile`.
    pub fn applies_to(&self, profile: nslab::addr::profile::Profile) -> bool {
        self.profiles.as_ref().is_none_or(|ps| ps.contains(&profile))
    }

    /// The start expectation in `profile`.
    pub fn expect_start_for(&self, profile: nslab::addr::profile::Profile) -> ExpectStart {
        self.expect_start_in.iter().find(|(p, _)| *p == profile).map(|(_, e)| *e).unwrap_or(self.expect_start)
    }
}

/// The program of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    /// `command = ["prog", "arg", ...]`: run directly.
    Command(Vec<Template>),
    /// `shell = "..."`: run with `sh -c`.
    Shell(Template),
}

/// A file a service needs, written at `path` inside the service's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDef {
    /// Relative path inside the service directory.
    pub path: PathBuf,
    /// Where its bytes come from.
    pub content: FileContent,
}

/// The content of a [`FileDef`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// Written in the scenario (templated).
    Inline(Template),
    /// A file beside the scenario, copied as is: its canonical path, checked to be inside the
    /// scenario's folder.
    Source(PathBuf),
    /// A resolver's configuration (or, with `root_hints`, its root-hints file), generated per
    /// trial from the lab's addresses by nslab::lab::resolver.
    Resolver {
        /// The resolver.
        def: Box<super::resolver::ResolverDef>,
        /// The root-hints file instead of the configuration.
        root_hints: bool,
    },
}

/// A condition on a service: in `ready` and in `wait-for` steps.
#[derive(Debug, Clone)]
pub enum Condition {
    /// `listening = "tcp:8000"`: a socket like this is bound in the service's host.
    Listening(ListenSpec),
    /// `line = "<regex>"`: a line of its output (stdout or stderr) matches.
    Line(regex::Regex),
    /// `exit = true`: it has exited, whatever its status (a crash counts too);
    /// `exit = "success"`: it has exited with status 0 (a non-zero status or a signal is a failure).
    Exit {
        /// `exit = "success"`: only status 0 counts.
        success: bool,
    },
    /// A resolver's readiness: the socket is bound and a DNS query for `query` sent to it from
    /// its host gets a NOERROR answer.
    Answers {
        /// Its socket (`udp:127.0.0.1:53`).
        listening: ListenSpec,
        /// A lab name it must resolve.
        query: String,
    },
}

/// Whether a service must start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExpectStart {
    /// It must become ready (default).
    #[default]
    Success,
    /// It must exit before it is ready, within `ready_timeout`.
    Failure,
}

/// Reads a condition from `t`: exactly one of `listening`, `line`, `exit`.
pub(crate) fn decode_condition(t: &mut Table<'_, '_>) -> Result<Option<Condition>> {
    let present: Vec<&str> = ["listening", "line", "exit"].into_iter().filter(|k| t.has(k)).collect();
    if present.len() > 1 {
        let span = t.key_span(present[1]).unwrap_or(t.span.clone());
        return Err(t.doc.err(&span, format!("{} has both {} and {}; expected only one of listening, line, exit", t.what, present[0], present[1])));
    }
    if let Some(s) = t.str("listening")? {
        return ListenSpec::parse(&s.value).map(|l| Some(Condition::Listening(l))).map_err(|e| t.bad("listening", &s.span, e));
    }
    if let Some(s) = t.str("line")? {
        return regex(t, "line", &s).map(|r| Some(Condition::Line(r)));
    }
    if let Some(v) = t.take("exit") {
        return match v.get_ref() {
            DeValue::Boolean(true) => Ok(Some(Condition::Exit { success: false })),
            DeValue::String(s) if s == "success" => Ok(Some(Condition::Exit { success: true })),
            _ => Err(t.wrong("exit", &v, "\"success\" (exited with status 0) or true (exited, whatever the status)")),
        };
    }
    Ok(None)
}

/// Reads `[services]`, in file order.
pub(crate) fn decode_services(doc: &Doc<'_>, v: Val<'_>, known: &Known) -> Result<Vec<ServiceDef>> {
    let mut t = Table::new(doc, "[services]", v, "a table of services such as [services.web]")?;
    let mut out = Vec::new();
    for (name, v) in t.take_all() {
        nslab::lab::spec::check_name("service", &name.value).map_err(|e| doc.err(&name.span, e))?;
        out.push(decode_service(doc, name.value, v, known)?);
    }
    Ok(out)
}

fn decode_service(doc: &Doc<'_>, name: String, v: Val<'_>, known: &Known) -> Result<ServiceDef> {
    let mut t = Table::new(doc, format!("service {name:?}"), v, "a table such as [services.web]")?;
    t.check_keys(SERVICE_KEYS)?;
    let host_s = t.req_str("host", "\"<a declared host>\"")?;
    let host = refer(&t, "host", &host_s, "host", &known.hosts)?;
    let run = match (t.has("command"), t.has("shell")) {
        (true, true) => {
            let span = t.key_span("shell").unwrap_or(t.span.clone());
            return Err(doc.err(&span, format!("{} has both command and shell; expected only one of them", t.what)));
        }
        (false, false) => {
            return Err(
                doc.err(&t.span, format!("{} has neither command nor shell; expected command = [\"prog\", \"arg\"] or shell = \"prog arg | other\"", t.what))
            )
        }
        (true, false) => {
            let (span, items) = t.str_list("command", "an array of strings such as [\"python3\", \"-m\", \"http.server\"]")?.unwrap_or_default();
            if items.is_empty() {
                return Err(t.bad("command", &span, "the array is empty; expected the program and its arguments"));
            }
            Run::Command(items.iter().map(|s| exec_text(&t, "command", s, known)).collect::<Result<_>>()?)
        }
        (false, true) => {
            let s = t.str("shell")?.unwrap_or(Str { value: String::new(), span: t.span.clone() });
            if s.value.trim().is_empty() {
                return Err(t.bad("shell", &s.span, "the command is empty; expected a shell command line"));
            }
            Run::Shell(exec_text(&t, "shell", &s, known)?)
        }
    };
    let mut env = Vec::new();
    if let Some(mut et) = t.table("env", format!("the env of service {name:?}"), "a table of NAME = \"value\"")? {
        for (k, v) in et.take_all() {
            if k.value.is_empty() || k.value.starts_with(|c: char| c.is_ascii_digit()) || !k.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(doc.err(
                    &k.span,
                    format!(
                        "environment variable name {:?} in service {name:?} is not valid; expected letters, digits and '_', not starting with a digit",
                        k.value
                    ),
                ));
            }
            let s = match v.get_ref() {
                DeValue::String(s) => Str { value: s.to_string(), span: v.span() },
                other => match int_of(other) {
                    Some(Some(n)) => Str { value: n.to_string(), span: v.span() },
                    _ => return Err(et.wrong(&k.value, &v, "a string or an integer")),
                },
            };
            env.push((k.value.clone(), exec_text(&et, &k.value, &s, known)?));
        }
    }
    let cwd = t.str("cwd")?.map(|s| exec_text(&t, "cwd", &s, known)).transpose()?;
    let mut files = Vec::new();
    for (i, f) in t.tables("files", "an array of files such as [{ path = \"app.py\", source = \"files/app.py\" }]")?.into_iter().enumerate() {
        files.push(decode_file(doc, &name, i + 1, f, known)?);
    }
    let ready = match t.table(
        "ready",
        format!("the ready condition of service {name:?}"),
        "a table such as { listening = \"tcp:8000\" }, { line = \"regex\" }, { exit = \"success\" } or { exit = true }",
    )? {
        None => None,
        Some(mut rt) => {
            rt.check_keys(&["listening", "line", "exit"])?;
            let c = decode_condition(&mut rt)?;
            if c.is_none() {
                return Err(doc.err(&rt.span, format!("{} is empty; expected one of listening, line, exit", rt.what)));
            }
            c
        }
    };
    let ready_timeout = t.positive_duration("ready_timeout")?.unwrap_or(DEFAULT_READY_TIMEOUT);
    let parse_start = |t: &Table<'_, '_>, s: &Str| -> Result<ExpectStart> {
        match s.value.as_str() {
            "success" => Ok(ExpectStart::Success),
            "failure" => Ok(ExpectStart::Failure),
            other => Err(t.bad("expect_start", &s.span, format!("{other:?} is not a start expectation; expected \"success\" or \"failure\""))),
        }
    };
    let (mut expect_start, mut expect_start_in) = (ExpectStart::Success, Vec::new());
    if t.key_span("expect_start").is_some() && !matches!(t.peek_is_table("expect_start"), Some(true)) {
        if let Some(s) = t.str("expect_start")? {
            expect_start = parse_start(&t, &s)?;
        }
    } else if let Some(mut et) = t.table(
        "expect_start",
        format!("the expect_start of service {name:?}"),
        "\"success\", \"failure\", or a table of profile = \"success\"|\"failure\" with an optional default",
    )? {
        for (k, v) in et.take_all() {
            let s = et.as_str(&k.value, v, "\"success\" or \"failure\"")?;
            let start = parse_start(&et, &s)?;
            if k.value == "default" {
                expect_start = start;
                continue;
            }
            let p = k.value.parse::<nslab::addr::profile::Profile>().map_err(|e| doc.err(&k.span, format!("{e}; or default")))?;
            if !known.profiles.contains(&p) {
                let have: Vec<&str> = known.profiles.iter().map(|p| p.name()).collect();
                return Err(
                    doc.err(&k.span, format!("profile {:?} is not among the scenario's profiles; expected one of {}, or default", k.value, have.join(", ")))
                );
            }
            expect_start_in.push((p, start));
        }
    }
    let autostart = t.bool("autostart")?.unwrap_or(true);
    let stop_grace = t.duration("stop_grace")?;
    let trace = t.bool("trace")?.unwrap_or(false);
    let profiles = match t.str_list("profiles", "an array of profile names such as [\"dual-stack\", \"ipv6-only\"]")? {
        None => None,
        Some((span, list)) => {
            if list.is_empty() {
                return Err(t.bad("profiles", &span, "the array is empty; expected at least one profile of the scenario"));
            }
            super::decode::check_unique(doc, "profile", &list)?;
            Some(list.iter().map(|s| super::expect::profile_of_scenario(&t, s, known)).collect::<Result<Vec<_>>>()?)
        }
    };
    if let Some(ps) = &profiles {
        // Its start expectation in a profile it does not exist in would never be checked.
        if let Some((p, _)) = expect_start_in.iter().find(|(p, _)| !ps.contains(p)) {
            let span = t.key_span("expect_start").unwrap_or(t.span.clone());
            return Err(
                doc.err(&span, format!("{} gives an expect_start for {p}, which is not among its profiles; expected only profiles it exists in", t.what))
            );
        }
    }
    Ok(ServiceDef { name, host, run, env, cwd, files, ready, ready_timeout, expect_start, expect_start_in, autostart, stop_grace, trace, profiles })
}

fn decode_file(doc: &Doc<'_>, service: &str, n: usize, v: Val<'_>, known: &Known) -> Result<FileDef> {
    let mut t = Table::new(doc, format!("file {n} of service {service:?}"), v, "a table such as { path = \"app.py\", content = \"...\" }")?;
    t.check_keys(FILE_KEYS)?;
    let path_s = t.req_str("path", "\"app.py\"")?;
    let path = relative_path(&path_s.value).map_err(|why| {
        t.bad("path", &path_s.span, format!("{:?} {why}; expected a relative path inside the service directory such as \"conf/app.ini\"", path_s.value))
    })?;
    let content = match (t.str("content")?, t.str("source")?) {
        (Some(_), Some(s)) => return Err(doc.err(&s.span, format!("{} has both content and source; expected only one of them", t.what))),
        (None, None) => {
            return Err(doc.err(&t.span, format!("{} has neither content nor source; expected content = \"...\" or source = \"files/app.py\"", t.what)))
        }
        (Some(c), None) => FileContent::Inline(template(&t, "content", &c, known)?),
        (None, Some(s)) => FileContent::Source(resolve_source(doc, &t, &s)?),
    };
    Ok(FileDef { path, content })
}

/// A template that ends up in an `execve` argument, environment value or working directory, where
/// a NUL byte cannot go: refused here, with its place, rather than when the service starts.
fn exec_text(t: &Table<'_, '_>, key: &str, s: &Str, known: &Known) -> Result<Template> {
    if let Some(at) = s.value.find('\0') {
        let span = t.doc.inner_span(s, at..at + 1);
        return Err(t.doc.err(&span, format!("{} in {}: the text contains a NUL byte (\\u0000); expected text without NUL, which a program's arguments, environment and working directory cannot hold", super::decode::key_name(key), t.what)));
    }
    template(t, key, s, known)
}
