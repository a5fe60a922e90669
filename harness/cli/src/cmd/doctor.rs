//! `nslab doctor`: prints what this machine can do, each missing part with what to do.

use std::process::ExitCode;

use crate::paint::{Paint, Tone};

/// Prints the checks; exit 1 when the first (privileges) fails, as nothing can run then.
pub(crate) fn doctor(paint: &Paint) -> ExitCode {
    let checks = nslab_cli::doctor::run();
    for c in &checks {
        let mark = if c.ok { paint.paint(Tone::Good, "ok  ") } else { paint.paint(Tone::Unsure, "MISS") };
        println!("{mark} {:<30} {}", c.what, c.found);
        if !c.ok {
            println!("     {:<30} -> {}", "", c.fix);
        }
    }
    if checks.first().is_some_and(|c| c.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
