//! The timeline interpreter: plays a trial's steps in order and records when each ended (named
//! steps, DNS changes, CNAME swaps, stops of a target's service).

use std::time::Duration;

use super::services::wait_ready;
use super::state::{Swap, Trial, STOP_GRACE};
use crate::runner::error::Error;
use crate::runner::stale::MarkKind;
use crate::scenario::{Action, DnsFault, FaultScope, LinkState, Scenario, Step, When};
use nslab::dns::{ControlError, FaultTarget, RecordValue};

impl Trial<'_> {
    /// Plays the timeline, step by step.
    pub(super) async fn timeline(&mut self) -> Result<(), Error> {
        let s = self.scenario;
        // Lab time: program time in a scaled trial, so `at` and `after` are program durations.
        let clock = self.clock().clone();
        let t0 = clock.now();
        let profile = self.profile;
        // `after` counts from when the previous step ended as recorded: for a wait for a DNS
        // query, when the query came, not when the harness noticed it.
        let mut ended = t0;
        for (i, step) in s.timeline.iter().enumerate().filter(|(_, st)| st.applies_to(profile)) {
            match step.when {
                When::At(at) => clock.sleep_until(t0 + at).await,
                When::AfterPrevious(d) => clock.sleep_until(ended + d).await,
            }
            ended = self.step_and_record(i, step).await?.unwrap_or_else(|| clock.now());
        }
        Ok(())
    }

    /// Runs one timeline step and records when it ended (named steps, DNS changes, swaps): the
    /// time it returns, or `None` for a step of another profile.
    pub(super) async fn step_and_record(&mut self, i: usize, step: &Step) -> Result<Option<Duration>, Error> {
        let s = self.scenario;
        if !step.applies_to(self.profile) {
            return Ok(None);
        }
        {
            let clock = self.clock().clone();
            let began = clock.now();
            self.step(step).await.map_err(|e| Error::Step { number: i + 1, kind: step.action.kind(), source: Box::new(e) })?;
            let mut at = clock.now();
            // A swap takes effect inside the step, before it returns: a query the server answered
            // with the new target meanwhile shows the change already in effect. The change's time
            // is then just before that query, so the query counts as one after it (seen in CI: a
            // curl loop's look-up answered green between the swap and the step's end was counted
            // before the change, and "asked again before it moved" found none).
            if let (Action::SwapCname { to, .. }, Some(dns)) = (&step.action, self.lab().dns()) {
                let new = first_label(to);
                let first_new = clock
                    .queries(dns.log())
                    .iter()
                    .rev()
                    .take_while(|e| e.at > began)
                    .filter(|e| e.answers.iter().any(|a| a.data.target().is_some_and(|d| first_label(d) == new)))
                    .map(|e| e.at)
                    .min();
                if let Some(t) = first_new.filter(|t| *t <= at) {
                    at = t.saturating_sub(Duration::from_micros(1)).max(began);
                }
            }
            // A wait for a DNS query ends when the query reached the lab DNS, not when the
            // harness noticed it: the step anchors windows to a cache entry's birth, and on a busy
            // machine noticing came late (at 100x, 10 ms of delay is a second of program time).
            if let (Action::WaitDnsQuery { host, name, rtype, .. }, Some(dns)) = (&step.action, self.lab().dns()) {
                let asked = self.dns_query_of(host, name.as_deref(), *rtype)?;
                let first = clock.queries(dns.log()).iter().filter(|e| e.at >= began && asked(e)).map(|e| e.at).min();
                if let Some(t) = first.filter(|t| *t <= at) {
                    at = t;
                }
            }
            if let Some(n) = &step.name {
                self.steps.insert(n.clone(), at);
            }
            let label = step.name.clone().unwrap_or_else(|| step.action.kind().to_string());
            if matches!(step.action, Action::SwapCname { .. } | Action::SetRecord { .. } | Action::DeleteRecord { .. } | Action::SetTtl { .. }) {
                self.dns_steps.push((label.clone(), at, MarkKind::DnsChange));
            }
            if let Action::Stop { service } = &step.action {
                if self.targets.values().any(|t| t.service() == Some(service.as_str())) {
                    self.dns_steps.push((label.clone(), at, MarkKind::TargetStop));
                }
            }
            if let Action::SwapCname { zone, record, to } = &step.action {
                let key = (first_label(zone), first_label(record));
                let old = self.swaps.iter().rev().find(|w| w.key == key).map(|w| w.new.clone()).or_else(|| cname_target(s, zone, record));
                if let Some(old) = old {
                    self.swaps.push(Swap { key, step: label, at, old, new: first_label(to) });
                }
            }
            Ok(Some(at))
        }
    }

    /// Whether a query log entry is one `host` asked (from any of its addresses), for `name` and
    /// of `rtype` when given: what a `wait-dns-query` step waits for.
    fn dns_query_of(
        &self,
        host: &str,
        name: Option<&str>,
        rtype: Option<nslab::dns::RecordKind>,
    ) -> Result<impl Fn(&nslab::dns::QueryLogEntry) -> bool, Error> {
        let h = self.host(host)?;
        let addrs: Vec<std::net::IpAddr> = h.addrs().into_iter().chain(h.link_local().map(std::net::IpAddr::V6)).collect();
        let name = name.map(str::to_owned);
        Ok(move |e: &nslab::dns::QueryLogEntry| {
            addrs.contains(&e.client.ip().to_canonical())
                && name.as_ref().is_none_or(|n| e.name.trim_end_matches('.').eq_ignore_ascii_case(n))
                && rtype.is_none_or(|t| e.qtype == Some(t.record_type()))
        })
    }

    pub(super) async fn step(&mut self, step: &Step) -> Result<(), Error> {
        let lab_err = Error::from;
        let dns_err = |e: ControlError| Error::Dns { error: Box::new(e) };
        match &step.action {
            Action::Start { service } => {
                let svc = self.scenario.service(service).ok_or_else(|| Error::NoService { service: service.clone() })?;
                self.start(svc).await?;
            }
            Action::Stop { service } => {
                let grace = self.scenario.service(service).and_then(|s| s.stop_grace).unwrap_or(STOP_GRACE);
                self.proc(service)?.stop(grace).await;
            }
            Action::Kill { service } => {
                self.proc(service)?.kill().await;
            }
            Action::SwapCname { zone, record, to } => {
                self.dns()?.zone(zone).map_err(dns_err)?.swap_cname(record, to).await.map_err(dns_err)?;
            }
            Action::SetRecord { zone, record, data, ttl } => {
                let value = data.clone();
                let kind = match &value {
                    RecordValue::Host(_) => None,
                    v => v.kind(),
                };
                let z = self.dns()?.zone(zone).map_err(dns_err)?;
                match kind {
                    Some(k) => {
                        z.replace_set(record, k, *ttl, vec![value]).await.map_err(dns_err)?;
                    }
                    // A host's records: replace its A and AAAA sets with the host's addresses.
                    None => {
                        let RecordValue::Host(h) = &value else { unreachable!() };
                        let host = self.host(h)?;
                        let v4: Vec<RecordValue> = host.ipv4().map(RecordValue::A).into_iter().collect();
                        let v6: Vec<RecordValue> = host.ipv6().map(RecordValue::Aaaa).into_iter().collect();
                        for (k, vals) in [(nslab::dns::RecordKind::A, v4), (nslab::dns::RecordKind::Aaaa, v6)] {
                            if vals.is_empty() {
                                let _ = z.delete_set(record, k).await;
                            } else {
                                z.replace_set(record, k, *ttl, vals).await.map_err(dns_err)?;
                            }
                        }
                    }
                }
            }
            Action::DeleteRecord { zone, record, rtype } => {
                let z = self.dns()?.zone(zone).map_err(dns_err)?;
                match rtype {
                    Some(t) => {
                        z.delete_set(record, *t).await.map_err(dns_err)?;
                    }
                    None => {
                        z.delete_name(record).await.map_err(dns_err)?;
                    }
                }
            }
            Action::SetTtl { zone, record, rtype, ttl } => {
                self.dns()?.zone(zone).map_err(dns_err)?.set_ttl(record, *rtype, *ttl).await.map_err(dns_err)?;
            }
            Action::DnsFault { fault, scope } => {
                let f = match fault {
                    DnsFault::ServFail => nslab::dns::Fault::ServFail,
                    DnsFault::NxDomain => nslab::dns::Fault::NxDomain,
                    DnsFault::Refused => nslab::dns::Fault::Refused,
                    DnsFault::Drop => nslab::dns::Fault::Drop,
                    DnsFault::Truncate => nslab::dns::Fault::Truncate,
                    DnsFault::TcpOnly => nslab::dns::Fault::TcpOnly,
                    // A delay the scenario gives in lab time: in a scaled trial the server waits
                    // its real share, so the program sees the delay it was given.
                    DnsFault::Delay(d) => nslab::dns::Fault::Delay(self.clock().real_for(*d)),
                };
                let target = match scope {
                    FaultScope::Server => FaultTarget::Server,
                    FaultScope::Name(n) => FaultTarget::Name(n.clone()),
                    FaultScope::Suffix(n) => FaultTarget::Suffix(n.clone()),
                };
                self.dns()?.faults().set(&target, f).map_err(dns_err)?;
            }
            Action::ClearDnsFaults => self.dns()?.faults().clear_all(),
            Action::Link { host, state } => self.host(host)?.set_link(*state == LinkState::Up).await.map_err(lab_err)?,
            Action::LinkCondition { host, condition: Some(c) } => self.lab().set_link_condition(host, c).await.map_err(lab_err)?,
            Action::LinkCondition { host, condition: None } => {
                if let Some(f) = self.lab().clear_link_condition(host).await.map_err(lab_err)? {
                    self.link_figures.push(f);
                }
            }
            Action::Route { router, family, state } => self.host(router)?.set_route(*family, *state).await.map_err(lab_err)?,
            Action::AddAddress { host, address, dad, hold: false } => self.host(host)?.add_address(address.ip, address.prefix, *dad).await.map_err(lab_err)?,
            Action::AddAddress { host, address, hold: true, .. } => self.host(host)?.add_address_held(address.ip, address.prefix).await.map_err(lab_err)?,
            Action::CompleteDad { host, address } => {
                let took = self.host(host)?.complete_dad(address.ip, address.prefix).await.map_err(lab_err)?;
                tracing::debug!(host, address = %address, ?took, "held DAD completed");
            }
            Action::RemoveAddress { host, address } => self.host(host)?.remove_address(address.ip, address.prefix).await.map_err(lab_err)?,
            Action::ChangeAddress { host, from, to, dad } => {
                // The new address first, so the host is never without one of that family.
                let h = self.host(host)?;
                h.add_address(to.ip, to.prefix, *dad).await.map_err(lab_err)?;
                h.remove_address(from.ip, from.prefix).await.map_err(lab_err)?;
            }
            Action::Wait { duration } => self.clock().sleep(*duration).await,
            Action::WaitDnsQuery { host, name, rtype, timeout } => {
                let asked = self.dns_query_of(host, name.as_deref(), *rtype)?;
                let log = self.dns()?.log();
                let since = self.lab().elapsed();
                let end = since + *timeout;
                let wanted = |e: &nslab::dns::QueryLogEntry| e.at >= since && asked(e);
                loop {
                    if log.entries().iter().any(wanted) {
                        break;
                    }
                    if self.lab().elapsed() > end {
                        let what = [name.clone(), rtype.map(|t| t.to_string())].into_iter().flatten().collect::<Vec<_>>().join(" ");
                        return Err(Error::NoDnsQuery { host: host.clone(), what, timeout: *timeout });
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            Action::Ipv6Arrives { mode, hold, .. } => {
                for h in hold {
                    let host = self.host(h)?;
                    self.provisioner()?.hold_dad(&host).await.map_err(lab_err)?;
                }
                self.provisioner()?.ipv6_arrives(*mode).await.map_err(lab_err)?;
                let dhcp6 = self.scenario.provision.as_ref().map(|d| d.dhcp6.clone()).unwrap_or_default();
                if !dhcp6.is_empty() {
                    let clients = dhcp6.iter().map(|h| self.host(h)).collect::<Result<Vec<_>, _>>()?;
                    self.provisioner()?.start_dhcp6(&clients).await.map_err(lab_err)?;
                }
            }
            Action::ReleaseDad { host } => {
                let h = self.host(host)?;
                let removed = self.provisioner()?.release_dad(&h).await.map_err(lab_err)?;
                tracing::info!(host, ?removed, "DAD hold released");
            }
            Action::Renumber { .. } => {
                let new = self.provisioner()?.renumber().await.map_err(lab_err)?;
                tracing::info!(prefix = %new, "segment renumbered");
            }
            Action::StopAdvertising { .. } => self.provisioner()?.stop_advertising().await.map_err(lab_err)?,
            Action::Dns64 { on, .. } => {
                let dns = self.dns()?.clone();
                let d64 = on.then(|| nslab::dns::Dns64::new(nslab::lab::nat64::PREFIX, 96).expect("the lab's NAT64 prefix is a /96"));
                self.provisioner()?.set_dns64(&dns, d64).await.map_err(lab_err)?;
            }
            Action::AaaaRecords { on, .. } => {
                let dns = self.dns()?.clone();
                self.provisioner()?.follow_aaaa(on.then_some(&dns)).await;
            }
            Action::WaitAddress { host, prefix, prefix_len, state, timeout } => {
                let h = self.host(host)?;
                self.provisioner()?.wait_address_in(&h, *prefix, *prefix_len, *state, *timeout).await.map_err(lab_err)?;
            }
            Action::WaitFor { service, condition, timeout } => {
                let proc = self.proc(service)?;
                let svc = self.scenario.service(service).ok_or_else(|| Error::NoService { service: service.clone() })?;
                let host = self.host(&svc.host)?;
                wait_ready(&host, &proc, Some(condition), *timeout).await.map_err(|observed| Error::NotReady { observed })?;
            }
        }
        Ok(())
    }
}

pub(super) fn first_label(name: &str) -> String {
    name.trim_end_matches('.').split('.').next().unwrap_or("").to_string()
}

/// The CNAME target of `record` in `zone` as the scenario declares it.
fn cname_target(s: &Scenario, zone: &str, record: &str) -> Option<String> {
    let z = s.dns.as_ref()?.zones.iter().find(|z| z.origin.trim_end_matches('.') == zone.trim_end_matches('.'))?;
    z.records.iter().find_map(|r| match &r.value {
        RecordValue::Cname(t) if first_label(&r.name) == first_label(record) => Some(first_label(t)),
        _ => None,
    })
}
