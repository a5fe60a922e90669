//! Templates in commands, environment values and files: `{{host.web.ipv6}}` and friends, parsed
//! when the scenario is loaded and rendered by the runner once the lab exists.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;

use nslab::addr::profile::Profile;

/// Every variable form, for error messages.
const VARIABLES: &str = "host.<name>.ipv4, host.<name>.ipv6, host.<name>.link_local, host.<name>.interface, host.<name>.addr, dns.ipv4, dns.ipv6, artifacts, scenario_dir, service_dir, profile, build.<name>";

/// The variables of a build's command (it runs before any lab, so no lab fact has a value).
const BUILD_VARIABLES: &str = "out, scenario_dir";

/// Which fact about a lab host a `{{host.<name>.<field>}}` variable stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostField {
    /// The host's IPv4 address on the lab segment (`192.0.2.N`).
    Ipv4,
    /// The host's global IPv6 address (`2001:db8:1::N`).
    Ipv6,
    /// The host's link-local address (`fe80::N`), without scope.
    LinkLocal,
    /// The host's lab interface name (`eth0`).
    Interface,
    /// The host's first address in its profile: IPv4 if it has one, else global IPv6, else link-local.
    Addr,
}

impl HostField {
    fn name(self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::LinkLocal => "link_local",
            Self::Interface => "interface",
            Self::Addr => "addr",
        }
    }
}

/// A template variable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Var {
    /// `{{host.<name>.<field>}}`: a fact about a declared host.
    Host {
        /// The host's name.
        host: String,
        /// Which fact.
        field: HostField,
    },
    /// `{{dns.ipv4}}`: the lab DNS server's IPv4 address.
    DnsIpv4,
    /// `{{dns.ipv6}}`: the lab DNS server's global IPv6 address.
    DnsIpv6,
    /// `{{artifacts}}`: the run's artifact directory.
    Artifacts,
    /// `{{scenario_dir}}`: the folder of the scenario file (absolute).
    ScenarioDir,
    /// `{{service_dir}}`: the service's own directory (its files, and its default working directory).
    ServiceDir,
    /// `{{profile}}`: the lab profile of this trial, e.g. `dual-stack`.
    Profile,
    /// `{{build.<name>}}`: the output directory of the scenario's build of that name (cached,
    /// see scenarios/README.md, "Builds").
    Build(String),
    /// `{{out}}`: in a build's command only, the directory the build writes its output to.
    Out,
}

impl fmt::Display for Var {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Var::Host { host, field } => write!(f, "host.{host}.{}", field.name()),
            Var::DnsIpv4 => f.write_str("dns.ipv4"),
            Var::DnsIpv6 => f.write_str("dns.ipv6"),
            Var::Artifacts => f.write_str("artifacts"),
            Var::ScenarioDir => f.write_str("scenario_dir"),
            Var::ServiceDir => f.write_str("service_dir"),
            Var::Profile => f.write_str("profile"),
            Var::Build(name) => write!(f, "build.{name}"),
            Var::Out => f.write_str("out"),
        }
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text (with `{{{{` already turned into `{{`).
    Text(String),
    /// A variable to substitute.
    Var(Var),
}

/// A parsed template: literal text and variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

/// What the runner knows about the lab of one trial; it answers each variable.
pub trait TemplateContext {
    /// The trial's profile (named in errors).
    fn profile(&self) -> Profile;
    /// The value of `var`, or `None` when it has none in this lab (an IPv4 address on ipv6-only).
    fn value(&self, var: &Var) -> Option<String>;
}

/// A variable without a value in the trial's lab.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template variable {{{{{variable}}}}} in {template:?} has no value in profile {profile}; {reason}")]
pub struct RenderError {
    /// The variable.
    pub variable: Var,
    /// The template's source text.
    pub template: String,
    /// The trial's profile.
    pub profile: Profile,
    /// Why it might have none.
    pub reason: String,
}

/// What templates may refer to, when they are parsed.
pub(crate) struct Scope<'a> {
    pub hosts: &'a BTreeSet<String>,
    pub dns: bool,
    /// The scenario's builds (`[build.<name>]`), which `{{build.<name>}}` may name.
    pub builds: &'a BTreeSet<String>,
    /// Whether this is a build's command: only `{{out}}` and `{{scenario_dir}}` have a value there.
    pub in_build: bool,
}

/// A template that does not parse: where (byte range in the text) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub range: Range<usize>,
    pub message: String,
}

impl Template {
    /// A template of literal text only.
    pub fn literal(text: impl Into<String>) -> Self {
        let source = text.into();
        Self { parts: vec![Part::Text(source.clone())], source }
    }

    /// Parses `text`; `{{{{` is a literal `{{`.
    pub(crate) fn parse(text: &str, scope: &Scope<'_>) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while let Some(rel) = text[i..].find("{{") {
            let open = i + rel;
            lit.push_str(&text[i..open]);
            if text[open..].starts_with("{{{{") {
                lit.push_str("{{");
                i = open + 4;
                continue;
            }
            let Some(close_rel) = text[open + 2..].find("}}") else {
                return Err(TemplateError {
                    range: open..open + 2,
                    message: "\"{{\" is not closed; expected {{variable}} (write {{{{ for a literal {{)".into(),
                });
            };
            let inner_start = open + 2;
            let inner_end = inner_start + close_rel;
            let name = text[inner_start..inner_end].trim();
            let var = parse_var(name, scope).map_err(|message| TemplateError { range: open..inner_end + 2, message })?;
            if !lit.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut lit)));
            }
            parts.push(Part::Var(var));
            i = inner_end + 2;
        }
        lit.push_str(&text[i..]);
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Self { source: text.to_string(), parts })
    }

    /// The text as written in the scenario.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The literal text and variables, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The variables used, in order of appearance.
    pub fn vars(&self) -> impl Iterator<Item = &Var> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Text(_) => None,
        })
    }

    /// Substitutes every variable.
    ///
    /// # Errors
    /// [`RenderError`] for the first variable the context has no value for.
    pub fn render(&self, ctx: &dyn TemplateContext) -> Result<String, RenderError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Var(v) => match ctx.value(v) {
                    Some(s) => out.push_str(&s),
                    None => return Err(RenderError { variable: v.clone(), template: self.source.clone(), profile: ctx.profile(), reason: why_missing(v) }),
                },
            }
        }
        Ok(out)
    }
}

fn why_missing(v: &Var) -> String {
    match v {
        Var::Host { host, field: HostField::Ipv4 } => format!("host {host} has no IPv4 address in this profile"),
        Var::Host { host, field: HostField::Ipv6 } => format!("host {host} has no global IPv6 address in this profile"),
        Var::Host { host, field: HostField::LinkLocal } => format!("host {host} has no link-local address in this profile"),
        Var::Host { host, field: HostField::Addr } => format!("host {host} has no address in this profile"),
        Var::Host { host, field: HostField::Interface } => format!("host {host} has no lab interface"),
        Var::DnsIpv4 => "the DNS server has no IPv4 address reachable in this profile".into(),
        Var::DnsIpv6 => "the DNS server has no IPv6 address reachable in this profile".into(),
        Var::Build(name) => format!("build {name} has not run for this trial"),
        Var::Artifacts | Var::ScenarioDir | Var::ServiceDir | Var::Profile | Var::Out => "the runner did not provide it".into(),
    }
}

fn parse_var(name: &str, scope: &Scope<'_>) -> Result<Var, String> {
    if scope.in_build {
        return match name {
            "out" => Ok(Var::Out),
            "scenario_dir" => Ok(Var::ScenarioDir),
            _ => Err(format!(
                "template variable {name:?} has no value in a build's command, which runs once for every trial, before any lab exists; expected one of {BUILD_VARIABLES}"
            )),
        };
    }
    let unknown = || format!("unknown template variable {name:?}; expected one of {VARIABLES}");
    let var = match name {
        "" => return Err(format!("empty template variable {{{{}}}}; expected one of {VARIABLES}")),
        "out" => return Err("template variable \"out\" is a build's output directory, known only in the command of a [build.<name>] table; expected {{build.<name>}} to use a build's output here".into()),
        "dns.ipv4" => Var::DnsIpv4,
        "dns.ipv6" => Var::DnsIpv6,
        "artifacts" => Var::Artifacts,
        "scenario_dir" => Var::ScenarioDir,
        "service_dir" => Var::ServiceDir,
        "profile" => Var::Profile,
        _ if name.starts_with("build.") => {
            let build = &name["build.".len()..];
            if !scope.builds.contains(build) {
                let expected = if scope.builds.is_empty() {
                    format!("a [build.{build}] table (the scenario declares no build)")
                } else {
                    format!("one of {}", scope.builds.iter().map(|b| format!("build.{b}")).collect::<Vec<_>>().join(", "))
                };
                return Err(format!("template variable {name:?} names build {build:?}, which is not declared; expected {expected}"));
            }
            Var::Build(build.to_string())
        }
        _ => {
            let Some(rest) = name.strip_prefix("host.") else { return Err(unknown()) };
            let Some((host, field)) = rest.rsplit_once('.') else { return Err(unknown()) };
            let field = match field {
                "ipv4" => HostField::Ipv4,
                "ipv6" => HostField::Ipv6,
                "link_local" => HostField::LinkLocal,
                "interface" => HostField::Interface,
                "addr" => HostField::Addr,
                _ => return Err(format!("unknown host fact {field:?} in template variable {name:?}; expected one of ipv4, ipv6, link_local, interface, addr")),
            };
            if !scope.hosts.contains(host) {
                return Err(format!(
                    "template variable {name:?} names host {host:?}, which is not declared; expected one of {}",
                    scope.hosts.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            Var::Host { host: host.to_string(), field }
        }
    };
    if matches!(var, Var::DnsIpv4 | Var::DnsIpv6) && !scope.dns {
        return Err(format!("template variable {name:?} needs the lab DNS server; expected a [dns] table in the scenario"));
    }
    Ok(var)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ctx;
    impl TemplateContext for Ctx {
        fn profile(&self) -> Profile {
            Profile::Ipv6Only
        }
        fn value(&self, var: &Var) -> Option<String> {
            match var {
                Var::Host { field: HostField::Ipv6, .. } => Some("2001:db8:1::17".into()),
                Var::Profile => Some("ipv6-only".into()),
                _ => None,
            }
        }
    }

    fn scope_hosts() -> BTreeSet<String> {
        ["web".to_string(), "client".to_string()].into()
    }

    fn parse(s: &str) -> Result<Template, TemplateError> {
        Template::parse(s, &Scope { hosts: &scope_hosts(), dns: false, builds: &["client".to_string()].into(), in_build: false })
    }

    #[test]
    fn parses_text_and_variables() {
        let t = parse("http://[{{ host.web.ipv6 }}]:8000/{{profile}}").unwrap();
        assert_eq!(
            t.parts(),
            &[
                Part::Text("http://[".into()),
                Part::Var(Var::Host { host: "web".into(), field: HostField::Ipv6 }),
                Part::Text("]:8000/".into()),
                Part::Var(Var::Profile),
            ]
        );
        assert_eq!(t.render(&Ctx).unwrap(), "http://[2001:db8:1::17]:8000/ipv6-only");
    }

    #[test]
    fn quadruple_brace_is_a_literal_and_lone_closers_are_text() {
        let t = parse("a{{{{b}} c}}").unwrap();
        assert_eq!(t.parts(), &[Part::Text("a{{b}} c}}".into())]);
        assert_eq!(t.vars().count(), 0);
    }

    #[test]
    fn unknown_variables_and_hosts_are_located() {
        let e = parse("x {{hots.web.ipv4}}").unwrap_err();
        assert_eq!(e.range, 2..19);
        assert!(e.message.starts_with("unknown template variable \"hots.web.ipv4\"; expected one of host.<name>.ipv4"));
        let e = parse("{{host.db.ipv4}}").unwrap_err();
        assert_eq!(e.message, "template variable \"host.db.ipv4\" names host \"db\", which is not declared; expected one of client, web");
        let e = parse("{{host.web.ip}}").unwrap_err();
        assert!(e.message.starts_with("unknown host fact \"ip\""));
        let e = parse("a {{profile").unwrap_err();
        assert_eq!(e.range, 2..4);
        assert!(parse("{{dns.ipv4}}").unwrap_err().message.contains("expected a [dns] table"));
        assert!(parse("{{}}").unwrap_err().message.starts_with("empty template variable"));
    }

    #[test]
    fn missing_value_names_variable_and_profile() {
        let t = parse("{{host.web.ipv4}}:80").unwrap();
        assert_eq!(
            t.render(&Ctx).unwrap_err().to_string(),
            "template variable {{host.web.ipv4}} in \"{{host.web.ipv4}}:80\" has no value in profile ipv6-only; host web has no IPv4 address in this profile"
        );
    }
}
