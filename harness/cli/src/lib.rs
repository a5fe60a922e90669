//! The `nslab` command's own parts, apart from argument parsing: live labs (`nslab up`, their
//! daemon, protocol and state), `nslab doctor` and `nslab demo`. Internal to nslab: the library
//! users depend on is the `nslab` crate.

pub mod demo;
pub mod doctor;
pub mod live;
