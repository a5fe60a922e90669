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
        Facts { profile, hosts, dns, artifacts: lab.artifacts().to_path_buf(), scenario_dir }
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
        }
    }
}
