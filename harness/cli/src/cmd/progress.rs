//! Progress on standard error while something takes a while: drawn only on a terminal
//! (elsewhere, such as CI logs, only the results are printed).

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting trials as they end.
pub(crate) fn trials(len: usize) -> ProgressBar {
    let pb = ProgressBar::new(len as u64);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} trials done; last: {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}

/// A spinner saying what is being waited for.
pub(crate) fn spinner(msg: String) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}
