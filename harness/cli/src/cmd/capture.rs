//! `nslab capture LAB [HOST...]`: the packets of a running lab's links as pcapng, live, to
//! stdout (`| wireshark -k -i -`) or to a new file (`-o FILE`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nslab_cli::live::{self, LabDir};

use super::exit::fail;

/// The arguments of `nslab capture`.
#[derive(clap::Args)]
pub(crate) struct CaptureArgs {
    /// The lab.
    lab: String,
    /// Hosts whose links to capture (`host@segment` for one link of a routed lab); all links
    /// when none is given.
    hosts: Vec<String>,
    /// Write to this new file (0600; an existing file or a link there is refused) instead of
    /// stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Streams until the lab goes down or the reader hangs up; exit 1 for a lab that is not up, a
/// name that is no link, or a file that cannot be made.
pub(crate) fn capture(root: &Path, a: CaptureArgs) -> ExitCode {
    if let Err(e) = live::check_root(root) {
        return fail(e);
    }
    let dir = LabDir::new(root, &a.lab);
    if let Err(e) = dir.live_state() {
        return fail(e);
    }
    let mut out: Box<dyn Write> = match &a.output {
        Some(path) => {
            // New, owner-only, never through a link.
            match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path) {
                Ok(f) => Box::new(f),
                Err(e) => return fail(format!("cannot create {}: {e} (it must not exist yet)", path.display())),
            }
        }
        None => Box::new(std::io::stdout().lock()),
    };
    let res = live::client::capture(&dir, &a.hosts, &mut out, |links| {
        eprintln!("nslab: {links} (pcapng to {})", a.output.as_ref().map_or("stdout".into(), |p| p.display().to_string()))
    });
    match res {
        Ok(()) => ExitCode::SUCCESS,
        // The reader hung up (`| head`, Wireshark closed): the end the user asked for.
        Err(live::LiveError::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
