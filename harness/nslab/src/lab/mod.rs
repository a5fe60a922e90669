//! A lab: the plan of its hosts, their build and teardown, its DNS host and its NAT64 router.

pub mod build;
pub mod dns_host;
pub mod nat64;
pub mod spec;
pub mod tap;
