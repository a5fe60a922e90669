//! The client side of the control protocol: a request to a lab's daemon and its replies.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::error::LiveError;
use super::protocol::{Reply, Request};
use super::state::LabDir;

/// Sends `req` to the daemon of `lab` and hands every reply line to `each` until the last.
///
/// # Errors
/// [`LiveError::Dead`] or [`LiveError::NoSuchLab`] when there is no daemon to ask;
/// [`LiveError::Refused`] with the daemon's text when it refused.
pub fn request(lab: &LabDir, req: &Request, timeout: Option<Duration>, mut each: impl FnMut(&Reply)) -> Result<(), LiveError> {
    let st = lab.live_state()?;
    let path = lab.socket();
    let mut stream = UnixStream::connect(&path).map_err(LiveError::io(format!("connect to the daemon of lab {} ({})", st.name, path.display())))?;
    stream.set_read_timeout(timeout).map_err(LiveError::io("set a timeout"))?;
    let mut line = serde_json::to_string(req).map_err(|e| LiveError::Refused(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(LiveError::io("send the request"))?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut buf = String::new();
        let n = reader.read_line(&mut buf).map_err(LiveError::io(format!("read the reply of the daemon of lab {}", st.name)))?;
        if n == 0 {
            return Err(LiveError::Refused(format!("the daemon of lab {} closed the connection without a reply (see {})", st.name, lab.log().display())));
        }
        let reply: Reply = serde_json::from_str(&buf).map_err(|e| LiveError::Refused(format!("unreadable reply from the daemon: {e}")))?;
        if !reply.ok {
            return Err(LiveError::Refused(reply.text));
        }
        each(&reply);
        if !reply.more {
            return Ok(());
        }
    }
}
