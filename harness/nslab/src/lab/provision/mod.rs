//! IPv6 provisioning of a lab segment by the real protocols: router advertisements from radvd
//! in a router host, the hosts' kernels doing SLAAC (with duplicate address detection as each
//! host's `dad` says), the address changes they make observed from netlink events, and the lab
//! DNS following (AAAA records as addresses become usable).
//!
//! How a provisioned segment relates to profiles: the hosts keep the addresses their profile
//! gives them at build (an `ipv4-only` host: IPv4 only, IPv6 disabled). [`Provisioner::prepare`]
//! makes every host of the segment what a cloud instance in an IPv4-only subnet is: IPv6 enabled
//! in the kernel, a kernel-made link-local address (EUI-64) where the profile had none, router
//! advertisements accepted and SLAAC on, but no global IPv6 address until the router advertises
//! a prefix ([`Provisioner::ipv6_arrives`]).

pub mod dhcp;
pub mod provisioner;
pub mod ra;
pub mod slaac;
pub mod watch;

pub use provisioner::{Mode, Provisioner};
pub use ra::{RaConfig, RaPrefix};
pub use watch::{AddrEvent, AddrState, AddressWatch};
