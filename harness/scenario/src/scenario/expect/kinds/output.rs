//! `kind = "output"`: the service's output matches (and/or does not match) a regex.

use std::fmt;

use crate::scenario::decode::{Result, Table};
use crate::scenario::expect::spec::{service, KindSpec};
use crate::scenario::known::{opt_regex, Known};

/// The service's output matches (and/or does not match) a regex.
#[derive(Debug, Clone)]
pub struct OutputCheck {
    /// The service.
    pub service: String,
    /// Which stream.
    pub stream: OutputStream,
    /// Some line must match.
    pub matches: Option<regex::Regex>,
    /// No line may match.
    pub not_matches: Option<regex::Regex>,
}

/// Which output stream an `output` expectation reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// Either (default).
    #[default]
    Both,
}

impl KindSpec for OutputCheck {
    const NAME: &'static str = "output";
    const KEYS: &'static [&'static str] = &["service", "stream", "matches", "not_matches"];

    fn decode(t: &mut Table<'_, '_>, known: &Known) -> Result<Self> {
        let service = service(t, known)?;
        let stream = match t.str("stream")? {
            None => OutputStream::Both,
            Some(s) => match s.value.as_str() {
                "stdout" => OutputStream::Stdout,
                "stderr" => OutputStream::Stderr,
                "both" => OutputStream::Both,
                other => return Err(t.bad("stream", &s.span, format!("{other:?} is not a stream; expected \"stdout\", \"stderr\" or \"both\""))),
            },
        };
        let matches = opt_regex(t, "matches")?;
        let not_matches = opt_regex(t, "not_matches")?;
        if matches.is_none() && not_matches.is_none() {
            return Err(t.doc.err(&t.span, format!("{} has neither matches nor not_matches; expected at least one of them", t.what)));
        }
        Ok(OutputCheck { service, stream, matches, not_matches })
    }
}

impl fmt::Display for OutputCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let OutputCheck { service, stream, matches, not_matches } = self;
        let s = match stream {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
            OutputStream::Both => "output",
        };
        write!(f, "{s} of service {service}")?;
        if let Some(m) = matches {
            write!(f, " matches {:?}", m.as_str())?;
        }
        if let Some(n) = not_matches {
            write!(f, "{} does not match {:?}", if matches.is_some() { " and" } else { "" }, n.as_str())?;
        }
        Ok(())
    }
}
