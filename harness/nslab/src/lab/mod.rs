//! A lab: the plan of its hosts, their build and teardown, its segments and routers, its DNS
//! host, its NAT64 router, its IPv6 provisioning, the caching resolvers it runs, and the
//! conditions of its links.

pub mod build;
pub mod capture;
pub mod dns_host;
pub mod link;
pub mod nat64;
pub mod provision;
pub mod resolver;
pub mod segment;
pub mod spec;
pub mod tap;
mod wakeup;
