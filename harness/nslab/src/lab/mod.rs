//! A lab: the plan of its hosts, their build and teardown, its DNS host, its NAT64 router, its IPv6 provisioning and
//! the caching resolvers it runs.

pub mod build;
pub mod dns_host;
pub mod nat64;
pub mod provision;
pub mod resolver;
pub mod spec;
pub mod tap;
