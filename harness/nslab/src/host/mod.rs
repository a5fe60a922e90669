//! One host: its programs and their output, its sockets and listeners, its addresses
//! (duplicate address detection held or completed), its private /run, /tmp, /var/tmp and /etc files.

pub mod dad;
pub mod etc;
pub mod handle;
pub mod hostfs;
pub mod interfaces;
pub mod listeners;
pub mod output;
pub mod process;
