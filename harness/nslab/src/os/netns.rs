//! Network namespaces held only by file descriptors: created, entered for one job, dropped.

use std::io;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::sys;

/// A network namespace owned by this process. It exists exactly as long as this handle (and
/// anything created inside it, such as sockets or processes); it is never bind-mounted, so the
/// kernel removes it when the last holder goes, even if the harness is killed.
#[derive(Debug, Clone)]
pub struct NetNs {
    fd: Arc<OwnedFd>,
    inode: u64,
}

impl NetNs {
    /// Creates a namespace and runs `setup` inside it on a fresh thread, without blocking the
    /// async runtime.
    ///
    /// # Errors
    /// Fails when the namespace cannot be created (typically: no CAP_SYS_ADMIN).
    pub(crate) async fn create_with<T, F>(setup: F) -> io::Result<(NetNs, T)>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name("nslab-netns".into()).spawn(move || {
            let _ = tx.send(sys::unshare_netns_here().map(|fd| (fd, setup())));
        })?;
        let (fd, out) = rx.await.map_err(|_| io::Error::other("namespace thread panicked"))??;
        let inode = sys::ns_inode(&fd)?;
        Ok((NetNs { fd: Arc::new(fd), inode }, out))
    }

    /// Runs `f` on a fresh thread inside this namespace, without blocking the async runtime.
    ///
    /// Sockets `f` creates belong to this namespace for their whole life.
    ///
    /// # Errors
    /// Fails when the namespace cannot be entered.
    pub async fn run<T, F>(&self, f: F) -> io::Result<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let fd = self.fd.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new().name("nslab-in-netns".into()).spawn(move || {
            let _ = tx.send(sys::enter_netns_here(&fd).map(|()| f()));
        })?;
        rx.await.map_err(|_| io::Error::other("namespace thread panicked"))?
    }

    /// Runs `f` inside this namespace, blocking the calling thread until it is done.
    ///
    /// # Errors
    /// Fails when the namespace cannot be entered.
    pub fn run_blocking<T, F>(&self, f: F) -> io::Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        sys::in_netns(&self.fd, f)
    }

    /// The namespace's inode number, as `/proc/PID/ns/net` shows it (`net:[INODE]`).
    pub fn inode(&self) -> u64 {
        self.inode
    }

    pub(crate) fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}
