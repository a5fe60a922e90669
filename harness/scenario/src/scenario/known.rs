//! What a scenario declares, for checking references while decoding: hosts, services, steps,
//! zones, profiles. Also the shared readers that need it (names, templates, regexes).

use std::collections::BTreeSet;

use std::path::{Component, Path, PathBuf};

use super::decode::{Doc, Result, Str, Table};
use super::template::{Scope, Template};
use nslab::addr::profile::Profile;

/// Names declared so far.
#[derive(Debug, Default)]
pub(crate) struct Known {
    pub hosts: BTreeSet<String>,
    /// Hosts with `router` (a `route` step names one).
    pub routers: BTreeSet<String>,
    pub dns: bool,
    pub zones: Vec<String>,
    pub services: BTreeSet<String>,
    pub targets: BTreeSet<String>,
    /// Targets read from a server's log (`service = ...`): they know a client's address only.
    pub log_targets: BTreeSet<String>,
    pub traced: BTreeSet<String>,
    pub steps: BTreeSet<String>,
    /// Named steps that run only in some profiles (`profiles = [...]` on the step).
    pub step_profiles: std::collections::BTreeMap<String, Vec<Profile>>,
    pub profiles: Vec<Profile>,
    /// Services that exist only in some profiles (`profiles = [...]` on the service).
    pub service_profiles: std::collections::BTreeMap<String, Vec<Profile>>,
    /// The services referred to (name, where) since the last [`Known::take_service_refs`]: what
    /// an expectation, step or target names, checked against the profiles it runs in.
    pub service_refs: std::cell::RefCell<Vec<(String, std::ops::Range<usize>)>>,
    /// `[resolvers.<name>]`: name -> its host.
    pub resolvers: std::collections::BTreeMap<String, String>,
    /// Segments with IPv6 provisioning (`[segments.<name>.ipv6]`).
    pub segments: BTreeSet<String>,
    /// `[build.<name>]`: what `{{build.<name>}}` may name.
    pub builds: BTreeSet<String>,
}

impl Known {
    pub(super) fn scope(&self) -> Scope<'_> {
        Scope { hosts: &self.hosts, dns: self.dns, builds: &self.builds, in_build: false }
    }

    /// The services referred to since the last call, and forgets them.
    pub(crate) fn take_service_refs(&self) -> Vec<(String, std::ops::Range<usize>)> {
        std::mem::take(&mut *self.service_refs.borrow_mut())
    }

    /// Checks that the services `what` referred to exist in every profile it runs in (`mine`;
    /// `None`: every profile of the scenario); the error points at the reference and says what
    /// to write (`fix`, given the profiles it may keep: those of its own the service exists in).
    pub(crate) fn check_service_profiles(&self, t: &Table<'_, '_>, mine: Option<&[Profile]>, fix: &dyn Fn(&str) -> String) -> Result<()> {
        let mine = mine.unwrap_or(&self.profiles);
        for (service, span) in self.take_service_refs() {
            let Some(theirs) = self.service_profiles.get(&service) else { continue };
            if let Some(p) = mine.iter().find(|p| !theirs.contains(p)) {
                let names: Vec<&str> = theirs.iter().map(|p| p.name()).collect();
                // What it may keep: the profiles it runs in that the service exists in.
                let keep: Vec<&Profile> = mine.iter().filter(|p| theirs.contains(p)).collect();
                let quoted: Vec<String> =
                    if keep.is_empty() { names.iter().map(|n| format!("{n:?}")).collect() } else { keep.iter().map(|p| format!("{:?}", p.name())).collect() };
                let list = quoted.join(", ");
                return Err(t.doc.err(
                    &span,
                    format!("service {service:?} exists only in {}, but {} refers to it in {p} too; expected {}", names.join(", "), t.what, fix(&list)),
                ));
            }
        }
        Ok(())
    }
}

/// Checks that `s` (the value of `key`) names a declared service, and notes the reference for
/// [`Known::check_service_profiles`].
pub(crate) fn refer_service(t: &Table<'_, '_>, key: &str, s: &Str, known: &Known) -> Result<String> {
    let name = refer(t, key, s, "service", &known.services)?;
    known.service_refs.borrow_mut().push((name.clone(), s.span.clone()));
    Ok(name)
}

/// Checks that `s` (the value of `key`) names a declared `kind`.
pub(crate) fn refer(t: &Table<'_, '_>, key: &str, s: &Str, kind: &str, set: &BTreeSet<String>) -> Result<String> {
    if set.contains(&s.value) {
        return Ok(s.value.clone());
    }
    let expected = if set.is_empty() {
        format!("a declared {kind} (the scenario declares none)")
    } else {
        format!("one of {}", set.iter().cloned().collect::<Vec<_>>().join(", "))
    };
    Err(t.bad(key, &s.span, format!("{kind} {:?} is not declared; expected {expected}", s.value)))
}

/// Parses a string value as a template; errors point at the offending variable.
pub(crate) fn template(t: &Table<'_, '_>, key: &str, s: &Str, known: &Known) -> Result<Template> {
    Template::parse(&s.value, &known.scope()).map_err(|e| {
        let span = t.doc.inner_span(s, e.range);
        t.doc.err(&span, format!("{} in {}: {}", super::decode::key_name(key), t.what, e.message))
    })
}

/// Compiles a regular expression given as the value of `key`.
pub(crate) fn regex(t: &Table<'_, '_>, key: &str, s: &Str) -> Result<regex::Regex> {
    regex::RegexBuilder::new(&s.value).size_limit(1 << 20).build().map_err(|e| {
        let text = e.to_string();
        let why = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim().trim_start_matches("error: ").to_string();
        t.bad(key, &s.span, format!("{:?} is not a valid regular expression ({why}); expected a regex such as \"Listening at\"", s.value))
    })
}

/// Takes an optional regex.
pub(crate) fn opt_regex(t: &mut Table<'_, '_>, key: &str) -> Result<Option<regex::Regex>> {
    match t.str(key)? {
        None => Ok(None),
        Some(s) => regex(t, key, &s).map(Some),
    }
}

/// A relative path made of normal components only.
pub(crate) fn relative_path(p: &str) -> std::result::Result<PathBuf, &'static str> {
    let path = Path::new(p);
    if p.is_empty() {
        return Err("is empty");
    }
    if path.is_absolute() {
        return Err("is absolute");
    }
    if path.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err("leaves its folder with '..'");
    }
    Ok(path.to_path_buf())
}

/// Resolves `source` against the scenario's folder; it must stay inside it, symlinks included.
pub(crate) fn resolve_source(doc: &Doc<'_>, t: &Table<'_, '_>, s: &Str) -> Result<PathBuf> {
    resolve_path(doc, t, "source", s)
}

/// Resolves the path `s` (the value of `key`, or an element of it) against the scenario's
/// folder; it must be a regular file inside it, symlinks included.
pub(crate) fn resolve_path(doc: &Doc<'_>, t: &Table<'_, '_>, key: &str, s: &Str) -> Result<PathBuf> {
    let expected = "expected a path relative to the scenario's folder, inside it, such as \"files/app.py\"";
    relative_path(&s.value).map_err(|why| t.bad(key, &s.span, format!("{:?} {why}; {expected}", s.value)))?;
    let dir = doc.file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let joined = dir.join(&s.value);
    let real = joined.canonicalize().map_err(|e| t.bad(key, &s.span, format!("{} cannot be opened ({e}); {expected}", joined.display())))?;
    let real_dir = dir.canonicalize().map_err(|e| t.bad(key, &s.span, format!("the scenario's folder {} cannot be opened ({e})", dir.display())))?;
    if !real.starts_with(&real_dir) {
        return Err(t.bad(key, &s.span, format!("{:?} leads outside the scenario's folder through a symbolic link; {expected}", s.value)));
    }
    if !real.is_file() {
        return Err(t.bad(key, &s.span, format!("{} is not a regular file; {expected}", joined.display())));
    }
    Ok(real)
}
