//! `nslab down`: tears labs down through their daemons (artifacts kept, their path printed),
//! or kills a daemon that does not answer (`--force`) and removes what it left.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nslab_cli::live::client::request;
use nslab_cli::live::protocol::Request;
use nslab_cli::live::{self, LabDir, ProcId};

use super::exit::fail;

/// The arguments of `nslab down`.
#[derive(clap::Args)]
pub(crate) struct DownArgs {
    /// The labs.
    #[arg(required_unless_present = "all")]
    labs: Vec<String>,
    /// Every running lab.
    #[arg(long)]
    all: bool,
    /// Kill a daemon that does not answer (SIGKILL), then remove what it left.
    #[arg(long)]
    force: bool,
}

/// Brings each lab down and waits until its daemon is gone; exit 1 when one could not be.
pub(crate) fn down(root: &Path, a: DownArgs) -> ExitCode {
    // Another user's state root is never read: its state.json would choose what to join.
    if let Err(e) = live::check_root(root) {
        return fail(e);
    }
    let labs: Vec<LabDir> = if a.all { live::labs(root) } else { a.labs.iter().map(|n| LabDir::new(root, n)).collect() };
    let mut code = ExitCode::SUCCESS;
    for lab in labs {
        if !lab.dir.exists() {
            eprintln!("nslab: no lab named {} (`nslab status` lists them)", lab.name);
            code = ExitCode::FAILURE;
            continue;
        }
        let daemon = lab.daemon();
        if !lab.alive() {
            let mut c = live::Collected::default();
            if live::remove_if_dead(&lab, &mut c) {
                println!("lab {} was not running; removed what it left ({} namespace(s))", lab.name, c.netns.len());
            } else {
                eprintln!("nslab: lab {} is coming up (an `nslab up` holds its name); try again once it is up", lab.name);
                code = ExitCode::FAILURE;
            }
            continue;
        }
        let pb = super::progress::spinner(format!("bringing lab {} down", lab.name));
        let mut said = String::new();
        let res = request(&lab, &Request::Down, Some(Duration::from_secs(120)), |r| said = r.text.clone());
        pb.finish_and_clear();
        match res {
            Ok(()) => println!("{said}"),
            Err(e) if a.force => {
                eprintln!("nslab: {e}; killing its daemon");
                if let Some(d) = daemon.filter(ProcId::alive) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(d.pid as i32), nix::sys::signal::Signal::SIGKILL);
                }
            }
            Err(e) => {
                eprintln!("nslab: {e} (--force kills its daemon)");
                code = ExitCode::FAILURE;
                continue;
            }
        }
        // Wait for the daemon to be gone, so nothing of the lab is left when this returns.
        let t = Instant::now();
        while daemon.is_some_and(|d| d.alive()) && t.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut c = live::Collected::default();
        live::remove_if_dead(&lab, &mut c);
    }
    code
}
