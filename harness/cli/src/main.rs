//! The `nslab` command: a thin layer over the library (arguments, output, exit codes). Each
//! subcommand is a file of `cmd/`; this one orders what must happen before any thread exists.

mod args;
mod cmd;
mod logging;
mod paint;

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Cmd};
use cmd::runtime::with_runtime;
use paint::Paint;

fn main() -> ExitCode {
    // Read before rootless mode, where every user looks like root.
    let state_root = nslab_cli::live::state_root();
    let cli = Cli::parse();
    if let Err(code) = before_threads(&cli.cmd) {
        return code;
    }
    logging::init();
    dispatch(cli.cmd, &state_root, &Paint::new())
}

/// What must happen while the process still has its one thread, before the async runtime (or
/// anything else) starts another: `rootless::enter` unshares a user namespace, which the
/// kernel refuses to a multithreaded process, and the daemon's `setsid` comes first of all so
/// that closing the terminal never ends a lab.
fn before_threads(cmd: &Cmd) -> Result<(), ExitCode> {
    if let Cmd::Serve(_) = cmd {
        // The daemon leaves the terminal's session: closing the terminal must not end the lab.
        let _ = nix::unistd::setsid();
    }
    // Commands that build or join labs cannot work in a chroot: say so instead of leaking out of it.
    if matches!(cmd, Cmd::Run(_) | Cmd::Replay(_) | Cmd::Matrix(_) | Cmd::Demo(_) | Cmd::Serve(_) | Cmd::Up(_) | Cmd::Exec(_) | Cmd::Shell(_))
        && nslab::os::chroot::inside()
    {
        eprintln!("nslab: {}", nslab::os::chroot::MESSAGE);
        return Err(ExitCode::FAILURE);
    }
    // Commands that build labs get their privileges first, while the process has one thread.
    if matches!(cmd, Cmd::Run(_) | Cmd::Replay(_) | Cmd::Matrix(_) | Cmd::Demo(_) | Cmd::Serve(_)) {
        if let Err(e) = nslab::os::rootless::enter() {
            eprintln!("nslab: {e}");
            return Err(ExitCode::FAILURE);
        }
    }
    Ok(())
}

/// Runs the subcommand. Only the ones that build labs or run trials get the async runtime,
/// built once, here, after [`before_threads`]. `exec` and `shell` must never get one: they join
/// a host's namespaces (setns) in this process, which needs it single-threaded. The others
/// (`up`, which starts its daemon as a new process, `status`, `down`, `dns`, `gc`) are plain
/// synchronous file and socket work.
fn dispatch(cmd: Cmd, state_root: &Path, paint: &Paint) -> ExitCode {
    match cmd {
        Cmd::Validate(a) => cmd::validate::validate(a),
        Cmd::List(a) => cmd::list::list(a),
        Cmd::Doctor => cmd::doctor::doctor(paint),
        Cmd::Up(a) => cmd::up::up(state_root, a, paint),
        Cmd::Exec(a) => cmd::exec::exec(state_root, a),
        Cmd::Shell(a) => cmd::exec::shell(state_root, a),
        Cmd::Dns(a) => cmd::dns::dns(state_root, a),
        Cmd::Capture(a) => cmd::capture::capture(state_root, a),
        Cmd::Status(a) => cmd::status::status(state_root, a, paint),
        Cmd::Down(a) => cmd::down::down(state_root, a),
        Cmd::Gc => cmd::gc::gc(state_root),
        Cmd::Bundle(a) => cmd::bundle::bundle(a),
        Cmd::Replay(a) => with_runtime(|rt| cmd::replay::replay(a, rt)),
        Cmd::Run(a) => with_runtime(|rt| cmd::run::run(a, rt, paint)),
        Cmd::Matrix(a) => with_runtime(|rt| cmd::matrix::matrix(a, rt)),
        Cmd::Demo(a) => with_runtime(|rt| cmd::demo::demo(a, rt)),
        Cmd::Serve(a) => with_runtime(|rt| cmd::serve::serve(a, rt)),
    }
}
