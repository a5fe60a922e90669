//! The binary's diagnostics: the `tracing` subscriber is installed here, by the command, never
//! by the libraries it uses (they only emit events and spans).

use tracing_subscriber::EnvFilter;

/// What is shown when neither variable says: warnings, and of hickory's server only errors.
const DEFAULT_FILTER: &str = "warn,hickory_server=error";

/// Installs the subscriber, writing to standard error: the filter comes from `NSLAB_LOG`, else
/// `RUST_LOG` (both in `tracing_subscriber::EnvFilter` syntax, `nslab=debug`), else the default.
/// An unreadable filter falls back to the next source, as an unset one does.
pub(crate) fn init() {
    let filter = EnvFilter::try_from_env("NSLAB_LOG").or_else(|_| EnvFilter::try_from_default_env()).unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
