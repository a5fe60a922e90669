//! `[hosts.<name>]`: the lab's hosts and their per-host overrides.

use std::str::FromStr;

use toml::de::DeValue;

use super::decode::{int_of, Doc, Result, Table, Val};
use nslab::addr::profile::Profile;
use nslab::lab::spec::{self, HostSpec};
use nslab::os::sysctl;

const HOST_KEYS: &[&str] = &["profile", "dad", "bindv6only", "sysctls", "gai_conf", "interface", "private"];

/// One lab host as the scenario declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDef {
    /// The host's name (a DNS label).
    pub name: String,
    /// A profile for this host in every trial, overriding the trial's.
    pub profile: Option<Profile>,
    /// Run duplicate address detection (addresses stay tentative for 1-2 s).
    pub dad: bool,
    /// `net.ipv6.bindv6only`, when set.
    pub bindv6only: Option<bool>,
    /// Other network sysctls, name and value, in file order.
    pub sysctls: Vec<(String, String)>,
    /// Content of the host's `/etc/gai.conf`.
    pub gai_conf: Option<String>,
    /// The lab interface's name (default `eth0`).
    pub interface: String,
    /// Machine directories the host gets its own empty copy of (besides /run, /tmp, /var/tmp),
    /// in plain form, in file order.
    pub private: Vec<std::path::PathBuf>,
}

impl HostDef {
    /// The library's host specification for a trial whose profile is `lab_profile`.
    pub fn to_host_spec(&self, lab_profile: Profile) -> HostSpec {
        let mut h = HostSpec::new(self.name.clone()).profile(self.profile.unwrap_or(lab_profile)).dad(self.dad).interface(self.interface.clone());
        if let Some(b) = self.bindv6only {
            h = h.bindv6only(b);
        }
        for (name, value) in &self.sysctls {
            h = h.sysctl(name.clone(), value.clone());
        }
        if let Some(g) = &self.gai_conf {
            h = h.gai_conf(g.clone());
        }
        for p in &self.private {
            h = h.private(p.clone());
        }
        h
    }
}

/// Reads `[hosts]`, in file order.
pub(crate) fn decode_hosts(doc: &Doc<'_>, v: Val<'_>) -> Result<Vec<HostDef>> {
    let mut hosts = Table::new(doc, "[hosts]", v, "a table of hosts such as [hosts.web]")?;
    let mut out = Vec::new();
    for (name, v) in hosts.take_all() {
        spec::check_name("host", &name.value).map_err(|e| doc.err(&name.span, e))?;
        out.push(decode_host(doc, name.value, v)?);
    }
    if out.len() > nslab::addr::plan::MAX_HOSTS {
        return Err(doc.err(&hosts.span, format!("[hosts] declares {} hosts; expected at most {}", out.len(), nslab::addr::plan::MAX_HOSTS)));
    }
    Ok(out)
}

fn decode_host(doc: &Doc<'_>, name: String, v: Val<'_>) -> Result<HostDef> {
    let mut t = Table::new(doc, format!("host {name:?}"), v, "a table such as [hosts.web] or web = {}")?;
    t.check_keys(HOST_KEYS)?;
    let profile = match t.str("profile")? {
        None => None,
        Some(s) => Some(Profile::from_str(&s.value).map_err(|e| t.bad("profile", &s.span, e))?),
    };
    let dad = t.bool("dad")?.unwrap_or(false);
    let bindv6only = t.bool("bindv6only")?;
    let interface = match t.str("interface")? {
        None => "eth0".to_string(),
        Some(s) => {
            spec::check_interface(&name, &s.value).map_err(|e| doc.err(&s.span, e))?;
            s.value
        }
    };
    let mut sysctls = Vec::new();
    if let Some(mut st) = t.table("sysctls", format!("the sysctls of host {name:?}"), "a table of sysctl = value")? {
        flatten_sysctls(&mut st, "", &mut sysctls)?;
    }
    let gai_conf = t.str("gai_conf")?.map(|s| s.value);
    let mut private = Vec::new();
    if let Some((_, list)) = t.str_list("private", "an array of absolute directory paths such as [\"/var/lib/app\"]")? {
        for s in list {
            let at = |e: String| t.bad("private", &s.span, e);
            let p = nslab::host::hostfs::check_path(&s.value).map_err(at)?;
            nslab::host::hostfs::check_on_machine(&p).map_err(at)?;
            nslab::host::hostfs::check_nesting(&private, &p).map_err(at)?;
            private.push(p);
        }
    }
    Ok(HostDef { name, profile, dad, bindv6only, sysctls, gai_conf, interface, private })
}

/// Reads sysctls, written quoted (`"net.ipv6.bindv6only" = 1`) or as dotted keys, which TOML
/// nests into tables (`net.ipv6.bindv6only = 1`).
fn flatten_sysctls(st: &mut Table<'_, '_>, prefix: &str, out: &mut Vec<(String, String)>) -> Result<()> {
    let doc = st.doc;
    for (k, v) in st.take_all() {
        let name = if prefix.is_empty() { k.value.clone() } else { format!("{prefix}.{}", k.value) };
        if let DeValue::Table(_) = v.get_ref() {
            let mut inner = Table::new(doc, st.what.clone(), v, "a table")?;
            flatten_sysctls(&mut inner, &name, out)?;
            continue;
        }
        sysctl::sysctl_path(&name).map_err(|e| doc.err(&k.span, e))?;
        let value = match v.get_ref() {
            DeValue::String(s) => s.to_string(),
            other => match int_of(other) {
                Some(Some(n)) => n.to_string(),
                _ => return Err(st.wrong(&name, &v, "a string or an integer")),
            },
        };
        out.push((name, value));
    }
    Ok(())
}
