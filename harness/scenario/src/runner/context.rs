//! Lab facts for templates.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::scenario::{HostField, TemplateContext, Var};
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
