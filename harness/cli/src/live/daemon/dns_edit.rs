//! What a DNS request typed on the command line means for the lab: its names placed in the
//! lab's zones, its typed values handed to the scenario engine as a timeline action.

use nslab::dns::RecordValue;
use nslab_scenario::runner::Session;
use nslab_scenario::scenario::{Action, FaultScope};

use crate::live::protocol::{DnsRequest, Scope};
use crate::live::records;

/// Every record of every zone, one a line.
pub(super) async fn show_zones(s: &Session) -> String {
    let Some(d) = s.lab().dns() else { return "this lab has no DNS server".into() };
    let mut out = String::new();
    for origin in d.origins() {
        if let Ok(z) = d.zone(&origin) {
            for r in z.dump().await {
                out.push_str(&r);
                out.push('\n');
            }
        }
    }
    out
}

/// Where a name typed on the command line belongs: `(zone, owner)`, the owner absolute
/// (trailing dot) when the name was written with its zone.
fn place(s: &Session, name: &str) -> Result<(String, String), String> {
    let dns = s.lab().dns().ok_or("this lab has no DNS server")?;
    let origins = dns.origins();
    let bare = name.trim_end_matches('.');
    if let Some(z) = origins.iter().find(|o| bare == o.as_str() || bare.ends_with(&format!(".{o}"))) {
        return Ok((z.clone(), format!("{bare}.")));
    }
    // A relative name: the one zone of the scenario (the lab's own lab.test aside).
    let own: Vec<&String> = origins.iter().filter(|o| o.as_str() != nslab::LAB_DOMAIN).collect();
    match own.as_slice() {
        [z] => Ok(((*z).clone(), bare.to_string())),
        [] => Ok((nslab::LAB_DOMAIN.to_string(), bare.to_string())),
        _ => Err(format!("{name:?} is in none of the zones by its suffix, and there are several; write it whole, in one of: {}", origins.join(", "))),
    }
}

/// A CNAME target typed on the command line: absolute when written with a zone.
fn target_name(s: &Session, name: &str) -> String {
    let bare = name.trim_end_matches('.');
    let origins = s.lab().dns().map(|d| d.origins()).unwrap_or_default();
    if name.ends_with('.') || origins.iter().any(|o| bare == o.as_str() || bare.ends_with(&format!(".{o}"))) {
        format!("{bare}.")
    } else {
        bare.to_string()
    }
}

/// The timeline action a DNS change means; `show` and `log` read the server and are answered
/// by the handler.
pub(super) fn dns_action(s: &Session, d: DnsRequest) -> Result<Action, String> {
    Ok(match d {
        DnsRequest::Set { name, value, ttl } => {
            let (zone, record) = place(s, &name)?;
            let data = match value {
                RecordValue::Host(host) => {
                    s.lab().host(&host).map_err(|e| e.to_string())?;
                    RecordValue::Host(host)
                }
                RecordValue::Cname(t) => RecordValue::Cname(target_name(s, &t)),
                RecordValue::Ns(t) => RecordValue::Ns(target_name(s, &t)),
                RecordValue::Ptr(t) => RecordValue::Ptr(target_name(s, &t)),
                other => other,
            };
            Action::SetRecord { zone, record, data, ttl: ttl.unwrap_or(nslab_scenario::scenario::DEFAULT_TTL) }
        }
        DnsRequest::Swap { name, target } => {
            let (zone, record) = place(s, &name)?;
            Action::SwapCname { zone, record, to: target_name(s, &target) }
        }
        DnsRequest::Delete { name, rtype } => {
            let (zone, record) = place(s, &name)?;
            Action::DeleteRecord { zone, record, rtype }
        }
        DnsRequest::Ttl { name, rtype, ttl } => {
            let (zone, record) = place(s, &name)?;
            Action::SetTtl { zone, record, rtype, ttl }
        }
        DnsRequest::Fault { fault, scope } => {
            let scope = match scope {
                Scope::Every => FaultScope::Server,
                Scope::Below(suffix) => FaultScope::Suffix(place(s, &suffix)?.1.trim_end_matches('.').to_string()),
                Scope::Name(n) => {
                    let (zone, owner) = place(s, &n)?;
                    let abs = if owner.ends_with('.') { owner.trim_end_matches('.').to_string() } else { format!("{owner}.{zone}") };
                    FaultScope::Name(abs)
                }
            };
            Action::DnsFault { fault: records::dns_fault(fault), scope }
        }
        DnsRequest::Clear => Action::ClearDnsFaults,
        DnsRequest::Show | DnsRequest::Log { .. } => return Err("show and log read the DNS server; they change nothing".into()),
    })
}
