//! How a subcommand ends when it cannot do its work.

use std::process::ExitCode;

/// Says `nslab: MSG` on standard error; exit code 1.
pub(crate) fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("nslab: {msg}");
    ExitCode::FAILURE
}
