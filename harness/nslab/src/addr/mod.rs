//! Addressing, below everything that has an address: the profiles (which families a host has)
//! and the plan (which documentation-prefix addresses a host name gets).

pub mod plan;
pub mod profile;
