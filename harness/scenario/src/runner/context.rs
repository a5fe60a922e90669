//! Lab facts for templates.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::scenario::{HostField, ResolverDef, TemplateContext, Var};
use nslab::addr::profile::Profile;
use nslab::lab::build::Lab;

/// The values templates see in one trial.
#[derive(Debug, Clone)]
pub struct Facts {
    /// The trial's profile.
    pub profile: Profile,
    /// Per host: field name -> value (absent fields have no value in this profile).
    pub hosts: BTreeMap<String, BTreeMap<&'static str, String>>,
    /// The DNS server's IPv4 and IPv6 addresses, when the lab has one.
    pub dns: (Option<String>, Option<String>),
    /// The lab's artifact directory.
    pub artifacts: PathBuf,
    /// The scenario file's folder.
    pub scenario_dir: PathBuf,
    /// The output directory of each build (`{{build.<name>}}`), from the build cache.
    pub builds: BTreeMap<String, PathBuf>,
}

impl Facts {
    /// Reads the facts off a built lab.
    pub fn of(lab: &Lab, profile: Profile, scenario_dir: PathBuf, dns_host: Option<&str>) -> Self {
        let mut hosts = BTreeMap::new();
        for h in lab.hosts() {
            let mut m = BTreeMap::new();
            if let Some(a) = h.ipv4() {
                m.insert("ipv4", a.to_string());
            }
            if let Some(a) = h.ipv6() {
                m.insert("ipv6", a.to_string());
            }
            if let Some(a) = h.link_local() {
                m.insert("link_local", a.to_string());
            }
            if let Some(a) = h.addrs().first() {
                m.insert("addr", a.to_string());
            }
            m.insert("interface", h.interface().to_string());
            hosts.insert(h.name().to_string(), m);
        }
        let dns = dns_host.and_then(|d| lab.host(d).ok()).map(|h| (h.ipv4().map(|a| a.to_string()), h.ipv6().map(|a| a.to_string()))).unwrap_or((None, None));
        Facts { profile, hosts, dns, artifacts: lab.artifacts().to_path_buf(), scenario_dir, builds: BTreeMap::new() }
    }

    /// A host's IPv4 and global IPv6 addresses in this trial (none for an unknown host).
    pub fn host_addrs(&self, host: &str) -> Vec<std::net::IpAddr> {
        let Some(m) = self.hosts.get(host) else { return Vec::new() };
        ["ipv4", "ipv6"].iter().filter_map(|k| m.get(k)?.parse().ok()).collect()
    }

    /// The lab DNS server's addresses.
    pub fn dns_addrs(&self) -> Vec<std::net::IpAddr> {
        [&self.dns.0, &self.dns.1].into_iter().flatten().filter_map(|a| a.parse().ok()).collect()
    }

    /// A resolver's generated file (its configuration, or its root hints) for the service
    /// directory `dir`, from this trial's addresses.
    ///
    /// # Errors
    /// What the program cannot do, or a recursion without root hints.
    pub fn resolver_file(&self, def: &ResolverDef, root_hints: bool, dir: &std::path::Path, resolver_hosts: &[(String, String)]) -> Result<String, String> {
        let spec = def.spec(&|h| self.host_addrs(h), &self.dns_addrs(), resolver_hosts);
        if let nslab::lab::resolver::ResolverMode::Forward { upstreams } = &spec.mode {
            if upstreams.is_empty() {
                return Err(format!(
                    "resolver {:?} on host {:?} has no upstream address of a family its host has in {}",
                    def.name,
                    def.host,
                    self.profile.name()
                ));
            }
        }
        if root_hints {
            return spec.root_hints_file().ok_or_else(|| "no root hints: the resolver forwards".to_string());
        }
        spec.config(dir).map(|c| c.text).map_err(|e| e.to_string())
    }

    /// The context of one service (its own directory).
    pub fn for_service(&self, service_dir: PathBuf) -> ServiceContext<'_> {
        ServiceContext { facts: self, service_dir }
    }
}

/// The values templates in `[dns]` records see in a trial: the lab's address plan, known
/// before the lab is built (the DNS server is handed its zones when the lab is built).
#[derive(Debug, Clone)]
pub struct PlanContext {
    profile: Profile,
    hosts: BTreeMap<String, nslab::addr::plan::HostAddresses>,
    dns_host: Option<String>,
}

impl PlanContext {
    /// The context of a trial of `s` in `profile`.
    ///
    /// # Errors
    /// As [`crate::scenario::Scenario::address_plan`].
    pub fn of(s: &crate::scenario::Scenario, profile: Profile) -> Result<Self, Box<nslab::Error>> {
        let hosts = s.address_plan(profile)?.into_iter().map(|h| (h.name.clone(), h)).collect();
        Ok(Self { profile, hosts, dns_host: s.dns.as_ref().map(|d| d.server_host().to_string()) })
    }
}

impl TemplateContext for PlanContext {
    fn profile(&self) -> Profile {
        self.profile
    }

    fn value(&self, var: &Var) -> Option<String> {
        let host = |name: &str| self.hosts.get(name);
        match var {
            Var::Host { host: name, field } => {
                let h = host(name)?;
                match field {
                    HostField::Ipv4 => h.ipv4.map(|a| a.to_string()),
                    HostField::Ipv6 => h.ipv6.map(|a| a.to_string()),
                    HostField::LinkLocal => h.link_local.map(|a| a.to_string()),
                    HostField::Interface => Some(h.interface.clone()),
                    HostField::Addr => h.ipv4.map(|a| a.to_string()).or_else(|| h.ipv6.map(|a| a.to_string())),
                }
            }
            Var::DnsIpv4 => self.dns_host.as_deref().and_then(host).and_then(|h| h.ipv4).map(|a| a.to_string()),
            Var::DnsIpv6 => self.dns_host.as_deref().and_then(host).and_then(|h| h.ipv6).map(|a| a.to_string()),
            Var::Profile => Some(self.profile.name().to_string()),
            // Refused in record values when the scenario is loaded.
            Var::Artifacts | Var::ScenarioDir | Var::ServiceDir | Var::Build(_) | Var::Out => None,
        }
    }
}

/// Template context of one service.
pub struct ServiceContext<'a> {
    facts: &'a Facts,
    service_dir: PathBuf,
}

impl TemplateContext for ServiceContext<'_> {
    fn profile(&self) -> Profile {
        self.facts.profile
    }

    fn value(&self, var: &Var) -> Option<String> {
        let f = self.facts;
        match var {
            Var::Host { host, field } => {
                let key = match field {
                    HostField::Ipv4 => "ipv4",
                    HostField::Ipv6 => "ipv6",
                    HostField::LinkLocal => "link_local",
                    HostField::Interface => "interface",
                    HostField::Addr => "addr",
                };
                f.hosts.get(host)?.get(key).cloned()
            }
            Var::DnsIpv4 => f.dns.0.clone(),
            Var::DnsIpv6 => f.dns.1.clone(),
            Var::Artifacts => Some(f.artifacts.display().to_string()),
            Var::ScenarioDir => Some(f.scenario_dir.display().to_string()),
            Var::ServiceDir => Some(self.service_dir.display().to_string()),
            Var::Profile => Some(f.profile.name().to_string()),
            Var::Build(name) => f.builds.get(name).map(|d| d.display().to_string()),
            // Refused outside a build's command when the scenario is loaded.
            Var::Out => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::OmittedRecord;
    use nslab::dns::RecordKind;

    /// Blue's slot in the address plan is 151 (stable per host name: `nslab list --addresses`).
    #[test]
    fn templated_records_are_rendered_per_profile_in_file_order_and_left_out_without_a_value() {
        let s = crate::scenario::parse_str(
            Path::new("x.toml"),
            "description = \"d\"\nprofiles = [\"ipv4-only\", \"dual-stack\", \"ipv6-only\"]\n[hosts.blue]\n[dns]\n[[dns.zones]]\norigin = \"example.test\"\nrecords = [\n\
             { name = \"app\", type = \"A\", value = \"{{host.blue.ipv4}}\" },\n\
             { name = \"lit\", type = \"TXT\", value = \"x {{{{y}}\" },\n\
             { name = \"app\", type = \"AAAA\", value = \"{{host.blue.ipv6}}\", ttl = 5 },\n\
             { name = \"web\", host = \"blue\" },\n\
             { name = \"p\", type = \"TXT\", value = \"{{profile}} {{dns.ipv6}}\" },\n]\n",
        )
        .unwrap();
        let d = s.dns.clone().unwrap();
        assert_eq!(d.templated.iter().map(|r| r.position).collect::<Vec<_>>(), vec![0, 2, 4]);
        let shown = |p| {
            let (zones, omitted) = d.zones_in(&PlanContext::of(&s, p).unwrap()).unwrap();
            (zones[0].records.iter().map(|r| format!("{} {} {:?}", r.name, r.ttl, r.value)).collect::<Vec<_>>(), omitted)
        };
        let (records, omitted) = shown(Profile::DualStack);
        assert_eq!(
            records,
            vec![
                "app 60 A(192.0.2.151)".to_string(),
                "lit 60 Txt([\"x {{y}}\"])".into(),
                "app 5 Aaaa(2001:db8:1::151)".into(),
                "web 60 Host(\"blue\")".into(),
                "p 60 Txt([\"dual-stack 2001:db8:1::214\"])".into()
            ]
        );
        assert!(omitted.is_empty());
        let (records, omitted) = shown(Profile::Ipv4Only);
        assert_eq!(records.len(), 4, "{records:?}");
        assert_eq!(
            omitted,
            vec![OmittedRecord {
                name: "app.example.test.".into(),
                kind: RecordKind::Aaaa,
                template: "{{host.blue.ipv6}}".into(),
                reason: "{{host.blue.ipv6}} has no value: host blue has no global IPv6 address in this profile".into()
            }]
        );
        assert_eq!(shown(Profile::Ipv6Only).1[0].kind, RecordKind::A);
    }
}
