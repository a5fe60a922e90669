//! The machine-facing layer: namespaces, netlink, sysctls, checked files and directories, the
//! artifact roots, rootless mode and chroot detection. Uses only [`crate::sys`] below it.

pub mod artifacts;
pub mod chroot;
pub mod fsafe;
pub mod netlink;
pub mod netns;
pub mod packet;
pub mod procid;
pub mod rootless;
pub mod sysctl;
