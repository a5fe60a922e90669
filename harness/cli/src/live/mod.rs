//! Long-lived labs: `nslab up` keeps a lab running in a background process (its daemon) that
//! people step into (`nslab exec`, `nslab shell`, `ip netns exec`), drive (`nslab dns`), list
//! (`nslab status`) and end (`nslab down`, or `nslab gc` after the daemon was killed).
//!
//! Each lab has a state directory (`/run/nslab/NAME` as root, `$XDG_RUNTIME_DIR/nslab/NAME` or
//! `$TMPDIR/nslab-UID/NAME` otherwise; the root is checked by [`nslab::os::fsafe`] on every use)
//! holding `lock` (whoever holds it is claiming the name: `nslab up`, `gc`), `daemon.pid` (the
//! daemon's pid and start time), `state.json` (written once the lab is up), the daemon's
//! control socket and its log. A lab is alive while the process in `daemon.pid` is; that, not
//! a name, is what `gc` goes by. The daemon is the only owner of the lab: every host
//! has an anchor process (PID 1 of the host's PID namespace, carrying its mount and UTS
//! namespaces) that commands join, and as root each host's network namespace is also bound to
//! `/run/netns/nslab-NAME.HOST` for `ip netns exec`. When the daemon dies, even by `kill -9`,
//! the anchors and everything started in the hosts die with it; only those bind mounts can
//! outlive it, and `nslab gc` (or the next `nslab up`/`down` of that name) removes them.

mod claim;
pub mod client;
pub mod daemon;
mod error;
mod exec;
mod gc;
mod netns;
pub mod protocol;
pub mod records;
mod root;
mod state;

pub use claim::{claim, Claim};
pub use error::LiveError;
pub use exec::exec;
pub use gc::{gc, remove_if_dead, remove_remains, Collected};
pub use netns::{netns_name, NETNS_DIR, NETNS_PREFIX};
pub use nslab::os::procid::ProcId;
pub use root::{check_name, check_root, state_root};
pub use state::{labs, HostState, LabDir, LabState};
