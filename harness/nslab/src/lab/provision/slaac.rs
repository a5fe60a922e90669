//! The kernel side of SLAAC in a segment's hosts: IPv6 on, router advertisements accepted,
//! autoconfiguration on, DAD as each host's `dad` says; and the router's forwarding.

use crate::error::{Error, Result};
use crate::host::handle::Host;

/// Makes `host` accept router advertisements on its lab interface and configure addresses
/// from them (SLAAC). A host whose profile disabled IPv6 (`ipv4-only`) gets it enabled on `lo`
/// and the lab interface, with a kernel-made (EUI-64) link-local address, as a cloud instance
/// in an IPv4-only subnet has. A forwarding host gets `accept_ra = 2` (the kernel ignores
/// advertisements on a forwarding interface with 1).
///
/// # Errors
/// [`Error::Invalid`] for a `no-ipv6` host (it models a kernel without IPv6), [`Error::Sysctl`].
pub async fn enable(host: &Host) -> Result<()> {
    refuse_absent(host)?;
    let ifname = host.interface().to_string();
    let conf = |k: &str| format!("net/ipv6/conf/{ifname}/{k}");
    let disabled = !host.profile().ipv6_enabled();
    if disabled {
        // Born with IPv6 off: the interface has the kernel's default address generation (EUI-64),
        // which makes the link-local address the moment IPv6 is switched on.
        host.set_sysctl(&conf("addr_gen_mode"), "0").await?;
    }
    let forwarding = host.sysctl(&conf("forwarding")).await.is_ok_and(|v| v.trim() == "1");
    host.set_sysctl(&conf("accept_dad"), if host.dad() { "1" } else { "0" }).await?;
    host.set_sysctl(&conf("accept_ra"), if forwarding { "2" } else { "1" }).await?;
    host.set_sysctl(&conf("autoconf"), "1").await?;
    host.set_sysctl(&conf("accept_ra_pinfo"), "1").await?;
    host.set_sysctl(&conf("accept_ra_defrtr"), "1").await?;
    if disabled {
        host.set_sysctl("net/ipv6/conf/lo/disable_ipv6", "0").await?;
        host.set_sysctl(&conf("disable_ipv6"), "0").await?;
    }
    Ok(())
}

/// Makes `router` a router on its interface `ifname`: IPv6 on (a kernel link-local address where its
/// profile had none, the source radvd sends from) and forwarding on, so it ignores
/// advertisements itself.
///
/// # Errors
/// [`Error::Invalid`] for a `no-ipv6` host, [`Error::Sysctl`].
pub async fn enable_router(router: &Host, ifname: &str) -> Result<()> {
    refuse_absent(router)?;
    let conf = |k: &str| format!("net/ipv6/conf/{ifname}/{k}");
    if !router.profile().ipv6_enabled() {
        router.set_sysctl(&conf("addr_gen_mode"), "0").await?;
        router.set_sysctl(&conf("accept_dad"), if router.dad() { "1" } else { "0" }).await?;
        router.set_sysctl("net/ipv6/conf/lo/disable_ipv6", "0").await?;
        router.set_sysctl(&conf("disable_ipv6"), "0").await?;
    }
    router.set_sysctl("net/ipv6/conf/all/forwarding", "1").await?;
    Ok(())
}

fn refuse_absent(host: &Host) -> Result<()> {
    if host.profile().ipv6_absent() {
        return Err(Error::Invalid {
            what: format!(
                "host {} has profile {} (a kernel without IPv6), so it cannot take part in IPv6 provisioning; give it another profile or leave it off the segment",
                host.name(),
                host.profile()
            ),
        });
    }
    Ok(())
}
