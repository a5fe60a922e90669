//! The client side of the control protocol: a request to a lab's daemon and its replies.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use super::error::LiveError;
use super::protocol::{Reply, Request};
use super::state::LabDir;

/// Asks the daemon of `lab` for the pcapng stream of the links of `hosts` (all when empty) and
/// copies it to `out`, flushed after each read (a pipe to `wireshark -k -i -` sees each packet
/// as it comes), until the lab goes down. `announced` gets the daemon's line naming the links
/// once the stream's first bytes (the pcapng header, written when the stream subscribed) are
/// out: from then on every packet of the links is in the stream.
///
/// # Errors
/// As [`request`]; the copy's errors (a closed pipe) as [`LiveError::Io`].
pub fn capture(lab: &LabDir, hosts: &[String], out: &mut dyn Write, announced: impl FnOnce(&str)) -> Result<(), LiveError> {
    let mut reader = send(lab, &Request::Capture { hosts: hosts.to_vec() }, None)?;
    let reply = read_reply(lab, &mut reader)?;
    let mut announced = Some((announced, reply.text));
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = match std::io::Read::read(&mut reader, &mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LiveError::io("read the capture stream")(e)),
        };
        out.write_all(&chunk[..n]).and_then(|()| out.flush()).map_err(LiveError::io("write the capture"))?;
        if let Some((f, text)) = announced.take() {
            f(&text);
        }
    }
}

/// Sends `req` to the daemon of `lab` and hands every reply line to `each` until the last.
///
/// # Errors
/// [`LiveError::Dead`] or [`LiveError::NoSuchLab`] when there is no daemon to ask;
/// [`LiveError::Refused`] with the daemon's text when it refused.
pub fn request(lab: &LabDir, req: &Request, timeout: Option<Duration>, mut each: impl FnMut(&Reply)) -> Result<(), LiveError> {
    let mut reader = send(lab, req, timeout)?;
    loop {
        let reply = read_reply(lab, &mut reader)?;
        each(&reply);
        if !reply.more {
            return Ok(());
        }
    }
}

/// Connects to the daemon of `lab` (reads time out after `timeout`) and sends `req`.
fn send(lab: &LabDir, req: &Request, timeout: Option<Duration>) -> Result<BufReader<UnixStream>, LiveError> {
    let st = lab.live_state()?;
    let path = lab.socket();
    let mut stream = UnixStream::connect(&path).map_err(LiveError::io(format!("connect to the daemon of lab {} ({})", st.name, path.display())))?;
    stream.set_read_timeout(timeout).map_err(LiveError::io("set a timeout"))?;
    let mut line = serde_json::to_string(req).map_err(|e| LiveError::Refused(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(LiveError::io("send the request"))?;
    Ok(BufReader::new(stream))
}

/// Reads the daemon's next reply line: an error when it refused or closed the connection.
fn read_reply(lab: &LabDir, reader: &mut BufReader<UnixStream>) -> Result<Reply, LiveError> {
    let name = &lab.name;
    let mut buf = String::new();
    let n = reader.read_line(&mut buf).map_err(LiveError::io(format!("read the reply of the daemon of lab {name}")))?;
    if n == 0 {
        return Err(LiveError::Refused(format!("the daemon of lab {name} closed the connection without a reply (see {})", lab.log().display())));
    }
    let reply: Reply = serde_json::from_str(&buf).map_err(|e| LiveError::Refused(format!("unreadable reply from the daemon: {e}")))?;
    if !reply.ok {
        return Err(LiveError::Refused(reply.text));
    }
    Ok(reply)
}
