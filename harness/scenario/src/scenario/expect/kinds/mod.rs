//! The kinds of expectation, one file each: what it checks (its model), its name, the keys it
//! allows, how it is decoded and the sentence reports name it by.

pub(crate) mod address;
pub(crate) mod bind_error;
pub(crate) mod connect;
pub(crate) mod diagnosis;
pub(crate) mod dns_queries;
pub(crate) mod exit;
pub(crate) mod first_request;
pub(crate) mod line_within;
pub(crate) mod listening;
pub(crate) mod never_reaches;
pub(crate) mod no_line;
pub(crate) mod output;
pub(crate) mod stale;
