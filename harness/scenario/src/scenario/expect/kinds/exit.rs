//! `kind = "exit"`: the service has exited, with a code or success when given.

use std::fmt;

use crate::scenario::decode::{Result, Table};
use crate::scenario::expect::spec::{service, KindSpec};
use crate::scenario::known::Known;

/// The service has exited (by the end of the trial), with this code / success when given.
#[derive(Debug, Clone)]
pub struct ExitCheck {
    /// The service.
    pub service: String,
    /// Exact exit code.
    pub code: Option<i32>,
    /// Whether it exited with status 0 (`false`: non-zero or killed by a signal).
    pub success: Option<bool>,
}

impl KindSpec for ExitCheck {
    const NAME: &'static str = "exit";
    const KEYS: &'static [&'static str] = &["service", "code", "success"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        let service = service(t, known)?;
        let code_span = t.key_span("code");
        let code = t.int("code", 0..=255)?.map(|n| n as i32);
        let success = t.bool("success")?;
        if let (Some(c), Some(s), Some(span)) = (code, success, code_span) {
            if (c == 0) != s {
                return Err(t.bad("code", &span, format!("code = {c} contradicts success = {s}; expected one of them, or values that agree")));
            }
        }
        Ok(ExitCheck { service, code, success })
    }
}

impl fmt::Display for ExitCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ExitCheck { service, code, success } = self;
        write!(f, "service {service} exits")?;
        match (code, success) {
            (Some(c), _) => write!(f, " with code {c}"),
            (None, Some(true)) => f.write_str(" successfully"),
            (None, Some(false)) => f.write_str(" unsuccessfully"),
            (None, None) => Ok(()),
        }
    }
}
