//! The background process of `nslab up`: builds the lab, keeps it running, serves the control
//! socket, and tears everything down on `nslab down`, SIGTERM, SIGINT or SIGHUP.

mod anchors;
mod dns_edit;
mod error;
mod handler;
mod serve;
mod timeline;

pub use error::DaemonError;
pub use serve::{serve, UpSpec};
