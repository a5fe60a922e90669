//! `kind = "bind-error"`: the service failed to bind a socket with an errno.

use std::fmt;

use toml::de::DeValue;

use crate::scenario::decode::{int_of, Result, Table};
use crate::scenario::expect::spec::{service, KindSpec};
use crate::scenario::known::Known;
use crate::scenario::values::Errno;

/// The service failed to bind a socket with this errno (and printed `message`, when given).
#[derive(Debug, Clone)]
pub struct BindErrorCheck {
    /// The service.
    pub service: String,
    /// The errno of the failed bind.
    pub errno: Errno,
    /// Text that must appear in its output.
    pub message: Option<String>,
}

impl KindSpec for BindErrorCheck {
    const NAME: &'static str = "bind-error";
    const KEYS: &'static [&'static str] = &["service", "errno", "message"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        let service = service(t, known)?;
        let v = t.required("errno", "\"EADDRINUSE\" (a name or a number)")?;
        let errno = match v.get_ref() {
            DeValue::String(s) => Errno::from_name(s),
            other => match int_of(other) {
                Some(Some(n)) => Errno::from_number(n),
                _ => return Err(t.wrong("errno", &v, "an errno name such as \"EADDRINUSE\" or a number")),
            },
        }
        .map_err(|e| t.bad("errno", &v.span(), e))?;
        Ok(BindErrorCheck { service, errno, message: t.str("message")?.map(|s| s.value) })
    }
}

impl fmt::Display for BindErrorCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let BindErrorCheck { service, errno, message } = self;
        write!(f, "service {service} fails to bind with {errno}")?;
        if let Some(m) = message {
            write!(f, " and prints {m:?}")?;
        }
        Ok(())
    }
}
