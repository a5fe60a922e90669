//! The command's one async runtime, for the subcommands that build labs or run trials.

use std::process::ExitCode;

use tokio::runtime::Runtime;

use super::exit::fail;

/// Builds the runtime (two workers: the trials' and labs' async work; blocking work goes to
/// its own pool) and runs `f` with it; the runtime ends when `f` returns.
///
/// Its worker threads exist from here on, so `main` calls this only after the steps that need
/// the process single-threaded (entering rootless mode), and never for `exec`/`shell`, which
/// join a host's namespaces in this very process.
pub(crate) fn with_runtime(f: impl FnOnce(&Runtime) -> ExitCode) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => f(&rt),
        Err(e) => fail(format!("cannot start the async runtime: {e}")),
    }
}
