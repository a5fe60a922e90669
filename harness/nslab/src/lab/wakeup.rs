//! A reader thread's wake-up: a non-blocking pipe another thread writes a byte to when it left
//! a request, waited on together with the reader's sockets (the link capture and the DNS tap).

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout};

/// The side that wakes the reader.
pub(crate) struct Wake(std::fs::File);

/// The reader's side.
pub(crate) struct WakeWait(std::fs::File);

/// A new wake-up pipe.
///
/// # Errors
/// When the pipe cannot be made.
pub(crate) fn pair() -> io::Result<(Wake, WakeWait)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
    Ok((Wake(std::fs::File::from(w)), WakeWait(std::fs::File::from(r))))
}

impl Wake {
    /// Wakes the reader (a full pipe already holds a wake-up: nothing is lost).
    pub(crate) fn wake(&self) {
        let _ = (&self.0).write(&[1]);
    }
}

impl WakeWait {
    /// Waits until one of `fds` is readable, a wake-up came, or `timeout` passed, then takes
    /// every wake-up waiting: a request left before this returns is seen by the caller's next
    /// look at its requests.
    ///
    /// # Errors
    /// When poll(2) fails (other than by a signal).
    pub(crate) fn wait(&self, fds: &[BorrowedFd<'_>], timeout: PollTimeout) -> nix::Result<()> {
        let mut polled: Vec<PollFd<'_>> = std::iter::once(self.0.as_fd()).chain(fds.iter().copied()).map(|fd| PollFd::new(fd, PollFlags::POLLIN)).collect();
        match nix::poll::poll(&mut polled, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        self.drain();
        Ok(())
    }

    /// Takes every wake-up waiting, without waiting.
    pub(crate) fn drain(&self) {
        let mut drain = [0u8; 64];
        while matches!((&self.0).read(&mut drain), Ok(n) if n > 0) {}
    }
}
