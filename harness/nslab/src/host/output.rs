//! Captured output of a program: written to its artifact files as it arrives, kept as lines to
//! match against, with a wake-up for everyone waiting on a new line.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::Notify;

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line of output, with the lab time it arrived at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Time since the lab was built.
    pub at: Duration,
    /// Its stream.
    pub stream: Stream,
    /// The text, without the newline (invalid UTF-8 replaced).
    pub text: String,
}

#[derive(Default)]
struct State {
    lines: Vec<Line>,
    /// Each stream's text exactly as written (invalid UTF-8 replaced).
    stdout: String,
    stderr: String,
    open_streams: u8,
}

/// The output of one process.
pub(crate) struct Output {
    state: Mutex<State>,
    notify: Notify,
    epoch: Instant,
    pub(crate) stdout_path: PathBuf,
    pub(crate) stderr_path: PathBuf,
}

impl Output {
    pub(crate) fn new(epoch: Instant, dir: &Path, name: &str) -> Self {
        Self {
            state: Mutex::new(State { open_streams: 2, ..State::default() }),
            notify: Notify::new(),
            epoch,
            stdout_path: dir.join(format!("{name}.stdout.log")),
            stderr_path: dir.join(format!("{name}.stderr.log")),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Copies `src` into the stream's log file and the line list until end of file.
    pub(crate) async fn pump(&self, src: impl AsyncRead + Unpin, stream: Stream) {
        let path = match stream {
            Stream::Stdout => &self.stdout_path,
            Stream::Stderr => &self.stderr_path,
        };
        // A new owner-only file (O_EXCL, never through a link) in the lab's checked artifacts.
        let mut file = match tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path).await {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot write output log");
                None
            }
        };
        let mut rd = BufReader::new(src);
        let mut buf = Vec::with_capacity(256);
        loop {
            buf.clear();
            match rd.read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            if let Some(f) = file.as_mut() {
                if f.write_all(&buf).await.is_err() {
                    file = None;
                }
            }
            let raw = String::from_utf8_lossy(&buf);
            let text = raw.strip_suffix('\n').unwrap_or(&raw);
            let text = text.strip_suffix('\r').unwrap_or(text).to_string();
            let mut st = self.lock();
            match stream {
                Stream::Stdout => st.stdout.push_str(&raw),
                Stream::Stderr => st.stderr.push_str(&raw),
            }
            st.lines.push(Line { at: self.epoch.elapsed(), stream, text });
            drop(st);
            self.notify.notify_waiters();
        }
        if let Some(mut f) = file {
            let _ = f.flush().await;
        }
        self.lock().open_streams -= 1;
        self.notify.notify_waiters();
    }

    /// All lines so far.
    pub(crate) fn lines(&self) -> Vec<Line> {
        self.lock().lines.clone()
    }

    /// The text of one stream exactly as written, or both interleaved by line for `None`.
    pub(crate) fn text(&self, stream: Option<Stream>) -> String {
        let st = self.lock();
        match stream {
            Some(Stream::Stdout) => return st.stdout.clone(),
            Some(Stream::Stderr) => return st.stderr.clone(),
            None => {}
        }
        let mut s = String::new();
        for l in st.lines.iter().filter(|l| stream.is_none_or(|w| l.stream == w)) {
            s.push_str(&l.text);
            s.push('\n');
        }
        s
    }

    /// The last `n` lines, each prefixed for an error message ("\n  | line").
    pub(crate) fn tail(&self, n: usize) -> String {
        let st = self.lock();
        let start = st.lines.len().saturating_sub(n);
        let mut s = String::new();
        if st.lines.is_empty() {
            s.push_str("\n  (no output)");
        } else {
            s.push_str(&format!("\n  last {} line(s) of output:", st.lines.len() - start));
        }
        for l in &st.lines[start..] {
            s.push_str("\n  | ");
            s.push_str(&l.text);
        }
        s
    }

    /// Waits until a line from index `from` on satisfies `pred`; `None` once both streams are
    /// closed without one.
    pub(crate) async fn wait_line(&self, mut from: usize, pred: &(dyn Fn(&str) -> bool + Sync)) -> Option<Line> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.lock();
                while from < st.lines.len() {
                    if pred(&st.lines[from].text) {
                        return Some(st.lines[from].clone());
                    }
                    from += 1;
                }
                if st.open_streams == 0 {
                    return None;
                }
            }
            notified.await;
        }
    }
}
