//! Holding an IPv6 address tentative (duplicate address detection running) for as long as a
//! scenario needs, and ending the hold.
//!
//! The kernel's DAD sends `dad_transmits` neighbour solicitations, `retrans_time_ms` apart,
//! after a random delay of up to `router_solicitation_delay`; the address stays tentative
//! (IFA_F_TENTATIVE) until the last one has gone unanswered. Left at their defaults (1 probe,
//! 1 s) that is 1.1 to 2.0 s, a window a program started right after the add meets only on a
//! quiet machine. A held address is added while the lab interface's `dad_transmits` is
//! [`HELD_PROBES`] (a day of probes): it is tentative until [`Host::complete_dad`] ends the
//! hold, however slowly the program that must meet it starts. Both sysctls are the interface's
//! own, inside the host's network namespace: nothing of the machine changes.
//!
//! The kernel reads `dad_transmits` when DAD of an address begins, from a work queue shortly
//! after the add, and never again for that address, so the raised value stays on the interface
//! while any held address is left (another address added with DAD meanwhile is held too), and
//! ending a hold re-adds the address: it then runs ordinary DAD (the interface's value from
//! before the hold) to its end, which the kernel reports.

use std::net::IpAddr;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::host::handle::Host;

/// `dad_transmits` while an address is held: one probe a second (`retrans_time_ms` 1000) for
/// a day, longer than any trial.
pub const HELD_PROBES: u32 = 86_400;

/// How long ordinary DAD may take once a hold ends (it takes 1.1-2.0 s on a veth; kernel
/// timers are not slowed by a busy CPU, the work queue that runs them can be).
const COMPLETE_TIMEOUT: Duration = Duration::from_secs(30);

impl Host {
    fn dad_transmits_sysctl(&self) -> String {
        format!("net/ipv6/conf/{}/dad_transmits", self.interface())
    }

    /// Adds IPv6 address `addr` with duplicate address detection held: it stays tentative
    /// (EADDRNOTAVAIL to a bind) until [`Host::complete_dad`]. Returns once the kernel reports
    /// it tentative.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an IPv4 address, [`Error::Sysctl`], [`Error::Netlink`].
    pub async fn add_address_held(&self, addr: IpAddr, prefix: u8) -> Result<()> {
        if !addr.is_ipv6() {
            return Err(Error::Invalid { what: format!("{addr}: only an IPv6 address runs duplicate address detection, so only one can be held tentative") });
        }
        let name = self.dad_transmits_sysctl();
        let need_saving = self.inner.held.lock().unwrap_or_else(|e| e.into_inner()).saved.is_none();
        let before = if need_saving { Some(self.sysctl(&name).await?) } else { None };
        {
            let mut held = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(b) = before {
                held.saved.get_or_insert(b);
            }
            held.addrs.push(addr);
        }
        self.set_sysctl(&name, &HELD_PROBES.to_string()).await?;
        self.add_address(addr, prefix, true).await?;
        match self.is_tentative(addr).await? {
            Some(true) => Ok(()),
            state => Err(Error::Invalid {
                what: format!(
                    "address {addr} on {} of host {} was to be held tentative, but the kernel reports it {state:?} right after the add",
                    self.interface(),
                    self.name()
                ),
            }),
        }
    }

    /// Ends the hold on `addr` (added by [`Host::add_address_held`]): the address is removed
    /// and added again with the interface's ordinary DAD settings, and this returns once the
    /// kernel reports DAD complete (the address usable), with how long that took.
    ///
    /// # Errors
    /// [`Error::Invalid`] when `addr` is not held, [`Error::Timeout`] when DAD does not end
    /// within 30 s, [`Error::Sysctl`], [`Error::Netlink`].
    pub async fn complete_dad(&self, addr: IpAddr, prefix: u8) -> Result<Duration> {
        let name = self.dad_transmits_sysctl();
        let saved = {
            let mut held = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
            let Some(i) = held.addrs.iter().position(|a| *a == addr) else {
                return Err(Error::Invalid {
                    what: format!("address {addr} of host {} is not held tentative (add it with dad = true and hold = true first)", self.name()),
                });
            };
            held.addrs.remove(i);
            held.saved.clone().unwrap_or_else(|| "1".into())
        };
        self.set_sysctl(&name, &saved).await?;
        self.remove_address(addr, prefix).await?;
        let t0 = tokio::time::Instant::now();
        self.add_address(addr, prefix, true).await?;
        self.wait_dad(addr, COMPLETE_TIMEOUT).await?;
        let took = t0.elapsed();
        let still_held = {
            let mut held = self.inner.held.lock().unwrap_or_else(|e| e.into_inner());
            if held.addrs.is_empty() {
                held.saved = None;
            }
            !held.addrs.is_empty()
        };
        if still_held {
            self.set_sysctl(&name, &HELD_PROBES.to_string()).await?;
        }
        Ok(took)
    }
}
