//! Trials run from the terminal, as `nslab run` and `nslab matrix` run them: admitted as the
//! machine carries (or `--jobs`), a progress bar meanwhile, and Ctrl-C or SIGTERM stopping the
//! run cleanly the first time, at once the second.

use std::process::ExitCode;

use indicatif::ProgressBar;
use nslab_scenario::runner::{self, PlannedTrial, RunOptions, TrialResult};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// Runs `trials` with `opts`; `each` gets every result as its trial ends, with the progress
/// bar (to suspend while printing). Returns the results and the names of the trials a
/// cancellation kept from starting.
///
/// # Errors
/// The exit code, once said why, when the signals cannot be watched (nothing ran).
pub(crate) fn run_trials(
    rt: &Runtime,
    trials: &[PlannedTrial],
    opts: &RunOptions,
    jobs: Option<usize>,
    mut each: impl FnMut(&ProgressBar, &TrialResult),
) -> Result<(Vec<TrialResult>, Vec<String>), ExitCode> {
    let admission = match jobs {
        Some(j) => runner::Admission::fixed(j),
        None => runner::Admission::for_machine(trials),
    };
    eprintln!("running {} trial(s), {}", trials.len(), admission.summary);
    let pb = super::progress::trials(trials.len());
    if let Err(e) = cancel_on_signals(rt, &opts.cancel, &pb) {
        eprintln!("nslab: cannot watch for SIGINT/SIGTERM: {e}");
        return Err(ExitCode::FAILURE);
    }
    let out = rt.block_on(runner::run_admitted_until(trials, opts, &admission, |r| each(&pb, r)));
    pb.finish_and_clear();
    Ok(out)
}

/// The exit code of a run stopped by SIGINT or SIGTERM (128 + SIGINT, as a shell reports Ctrl-C).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// Cancels `token` on the first SIGINT or SIGTERM (no new trial starts; the running ones are
/// stopped, torn down and reported), and exits at once with 130 on the second: the lab
/// processes die with nslab through their lifelines.
///
/// # Errors
/// The signal handlers could not be installed.
fn cancel_on_signals(rt: &Runtime, token: &CancellationToken, pb: &ProgressBar) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    // Installed now, before any trial starts, so no signal falls between.
    let _in_rt = rt.enter();
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let (token, pb) = (token.clone(), pb.clone());
    rt.spawn(async move {
        let first = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        token.cancel();
        pb.suspend(|| {
            eprintln!("nslab: {first}: interrupted: no new trial starts; the running ones are being stopped (their teardown runs, artifacts kept). Press Ctrl-C again to exit at once.")
        });
        let second = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        pb.suspend(|| eprintln!("nslab: second {second}: exiting at once; no summary or report is written (the labs' processes end with nslab)"));
        std::process::exit(EXIT_INTERRUPTED.into());
    });
    Ok(())
}
