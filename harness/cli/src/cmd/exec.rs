//! `nslab exec` and `nslab shell`: a command, or an interactive shell, inside a host of a
//! running lab.
//!
//! This process joins the host's namespaces itself (setns), which a process with more than
//! one thread cannot do: these commands never start the async runtime.

use std::path::Path;
use std::process::ExitCode;

use nslab_cli::live::{self, LabDir};

use super::exit::fail;

/// The arguments of `nslab exec`.
#[derive(clap::Args)]
pub(crate) struct ExecArgs {
    /// The lab.
    lab: String,
    /// The host.
    host: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// The arguments of `nslab shell`.
#[derive(clap::Args)]
pub(crate) struct ShellArgs {
    /// The lab.
    lab: String,
    /// The host.
    host: String,
}

/// Runs the command in the host; its exit code is passed on (128 + N for a signal).
pub(crate) fn exec(root: &Path, a: ExecArgs) -> ExitCode {
    run_in(root, &a.lab, &a.host, a.command, false)
}

/// Runs the user's shell (`$SHELL`, else bash, else sh) in the host; its exit code is passed on.
pub(crate) fn shell(root: &Path, a: ShellArgs) -> ExitCode {
    run_in(root, &a.lab, &a.host, Vec::new(), true)
}

fn run_in(root: &Path, lab: &str, host: &str, command: Vec<String>, shell: bool) -> ExitCode {
    // Another user's state root is never read: its state.json would choose what to join.
    if let Err(e) = live::check_root(root) {
        return fail(e);
    }
    let dir = LabDir::new(root, lab);
    let mut env = Vec::new();
    let argv = if shell {
        let sh = std::env::var("SHELL").ok().filter(|s| Path::new(s).exists()).unwrap_or_else(|| {
            if Path::new("/bin/bash").exists() {
                "/bin/bash".into()
            } else {
                "/bin/sh".into()
            }
        });
        // Debian's bashrc shows it in the prompt: (nslab:LAB)root@HOST:~#
        env.push(("debian_chroot".to_string(), format!("nslab:{lab}")));
        eprintln!("host {host} of lab {lab}: its network, /etc files, /run, /tmp and host name (exit or Ctrl-D leaves)");
        vec![sh]
    } else {
        command
    };
    match live::exec(&dir, host, &argv, &env) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => fail(e),
    }
}
