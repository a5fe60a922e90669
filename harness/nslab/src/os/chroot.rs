//! Whether nslab runs inside a chroot, which it cannot work in.
//!
//! A chroot is not a namespace: setns(2) into a lab host's mount namespace sets the process's
//! root to that namespace's root, which is the machine's, so programs in the lab would see the
//! machine's files instead of the chroot's; and the kernel refuses user namespaces (EPERM) to a
//! chrooted process. A container (`pivot_root` in a mount namespace of its own) has neither
//! problem.

use std::os::unix::fs::MetadataExt;

/// What nslab says where it finds itself in a chroot.
pub const MESSAGE: &str = "running inside a chroot, which nslab cannot work in: joining a lab host's namespaces (setns) leaves the chroot, so its \
     programs would see this machine's files, and the kernel refuses user namespaces (rootless mode) in a chroot; use a container or a VM";

/// Whether this process is in a chroot: it shares the mount namespace of its PID namespace's
/// init (PID 1) but not its root directory (compared by device and inode). `false` when that
/// cannot be read (no /proc, or not allowed to look at PID 1 without root).
pub fn inside() -> bool {
    let (Ok(own_ns), Ok(init_ns)) = (std::fs::read_link("/proc/self/ns/mnt"), std::fs::read_link("/proc/1/ns/mnt")) else {
        return false;
    };
    let (Ok(root), Ok(init_root)) = (std::fs::metadata("/"), std::fs::metadata("/proc/1/root/.")) else {
        return false;
    };
    own_ns == init_ns && (root.dev(), root.ino()) != (init_root.dev(), init_root.ino())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_machine_is_not_a_chroot() {
        // Tests run on a machine, a VM, a container or scripts/fresh-machine.sh's pivot_root,
        // never in a chroot (the kernel tests would not work there).
        assert!(!inside(), "{MESSAGE}");
    }
}
