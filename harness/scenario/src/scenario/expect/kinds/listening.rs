//! `kind = "listening"`: what is listening in a service's host (its own sockets) or in a host.

use std::fmt;

use crate::scenario::decode::{Result, Table};
use crate::scenario::expect::spec::KindSpec;
use crate::scenario::known::{refer, Known};
use crate::scenario::values::ListenSpec;

/// What is listening in the service's host (the service's own sockets) or in a host.
#[derive(Debug, Clone)]
pub struct ListeningCheck {
    /// Whose sockets.
    pub target: ListenTarget,
    /// Sockets that must be there.
    pub on: Vec<ListenSpec>,
    /// Whether no other listening socket may be there.
    pub exactly: bool,
}

/// Whose listening sockets a `listening` expectation looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenTarget {
    /// Sockets owned by the service's processes.
    Service(String),
    /// Every socket in the host.
    Host(String),
}

impl KindSpec for ListeningCheck {
    const NAME: &'static str = "listening";
    const KEYS: &'static [&'static str] = &["service", "host", "on", "exactly"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        let target = match (t.str("service")?, t.str("host")?) {
            (Some(_), Some(h)) => return Err(t.doc.err(&h.span, format!("{} has both service and host; expected only one of them", t.what))),
            (None, None) => {
                return Err(t.doc.err(&t.span, format!("{} has neither service nor host; expected service = \"<service>\" or host = \"<host>\"", t.what)))
            }
            (Some(s), None) => ListenTarget::Service(crate::scenario::known::refer_service(t, "service", &s, known)?),
            (None, Some(h)) => ListenTarget::Host(refer(t, "host", &h, "host", &known.hosts)?),
        };
        let (span, list) = t
            .str_list("on", "an array of sockets such as [\"tcp:0.0.0.0:8000\", \"tcp:[::]:8000 v6only\"]")?
            .ok_or_else(|| t.missing("on", "[\"tcp:[::]:8000\"]"))?;
        let exactly = t.bool("exactly")?.unwrap_or(false);
        if list.is_empty() && !exactly {
            return Err(t.bad("on", &span, "the array is empty; expected at least one socket (or exactly = true to say nothing listens)"));
        }
        let on = list.iter().map(|s| ListenSpec::parse(&s.value).map_err(|e| t.bad("on", &s.span, e))).collect::<Result<Vec<_>>>()?;
        Ok(ListeningCheck { target, on, exactly })
    }
}

impl fmt::Display for ListeningCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ListeningCheck { target, on, exactly } = self;
        match target {
            ListenTarget::Service(s) => write!(f, "service {s} listens on ")?,
            ListenTarget::Host(h) => write!(f, "host {h} listens on ")?,
        }
        let list: Vec<&str> = on.iter().map(|l| l.as_str()).collect();
        write!(f, "{}{}", list.join(", "), if *exactly { " and nothing else" } else { "" })
    }
}
