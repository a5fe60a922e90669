//! Ctrl-C and SIGTERM during `nslab run` and `nslab matrix`: the first stops the run cleanly,
//! the second at once.

use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

/// The exit code of a run stopped by SIGINT or SIGTERM (128 + SIGINT, as a shell reports Ctrl-C).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// Cancels `token` on the first SIGINT or SIGTERM (no new trial starts; the running ones are
/// stopped, torn down and reported), and exits at once with 130 on the second: the lab
/// processes die with nslab through their lifelines.
///
/// # Errors
/// The signal handlers could not be installed.
pub(crate) fn cancel_on_signals(rt: &Runtime, token: &CancellationToken, pb: &indicatif::ProgressBar) -> std::io::Result<()> {
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
