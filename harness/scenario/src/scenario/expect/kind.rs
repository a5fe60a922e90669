//! The list of the kinds of expectation: [`Check`] (what one checks) and [`Kind`] (its name,
//! keys and decoder), both made from one list so the compiler keeps them in step. Adding a
//! kind: its file under `kinds/` and one line here (and its evaluator in the runner, which
//! the compiler then asks for).

use std::fmt;

use super::kinds::address::AddressCheck;
use super::kinds::dns_queries::DnsQueriesCheck;
use super::kinds::{
    bind_error::BindErrorCheck, connect::ConnectCheck, diagnosis::DiagnosisCheck, exit::ExitCheck, first_request::FirstRequestCheck,
    line_within::LineWithinCheck, listening::ListeningCheck, never_reaches::NeverReachesCheck, no_line::NoLineCheck, output::OutputCheck, stale::StaleCheck,
};
use super::spec::KindSpec;
use crate::scenario::decode::{Result, Table};
use crate::scenario::known::Known;

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident($ty:ty),)*) => {
        /// What an expectation checks: one variant per kind.
        #[derive(Debug, Clone)]
        pub enum Check {
            $($(#[$doc])* $variant($ty),)*
        }

        /// A kind of expectation, as `kind = "..."` names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Kind {
            $($(#[$doc])* $variant,)*
        }

        impl Kind {
            /// Every kind, in the order messages list them.
            pub const ALL: &'static [Kind] = &[$(Kind::$variant,)*];

            /// The name as written in scenarios.
            pub fn name(self) -> &'static str {
                match self {
                    $(Kind::$variant => <$ty as KindSpec>::NAME,)*
                }
            }

            /// The keys it allows besides `kind`, `name` and `profiles`.
            pub(crate) fn keys(self) -> &'static [&'static str] {
                match self {
                    $(Kind::$variant => <$ty as KindSpec>::KEYS,)*
                }
            }

            /// Reads a check of this kind from its table.
            pub(crate) fn decode(self, t: &mut Table<'_, '_>, known: &Known) -> Result<Check> {
                Ok(match self {
                    $(Kind::$variant => Check::$variant(<$ty as KindSpec>::decode(t, known)?),)*
                })
            }
        }

        impl Check {
            /// Its kind.
            pub fn kind(&self) -> Kind {
                match self {
                    $(Check::$variant(_) => Kind::$variant,)*
                }
            }

            /// The named step its window starts at, if it has one.
            pub fn after(&self) -> Option<&str> {
                match self {
                    $(Check::$variant(c) => c.after(),)*
                }
            }
        }

        impl fmt::Display for Check {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $(Check::$variant(c) => c.fmt(f),)*
                }
            }
        }
    };
}

kinds! {
    /// The service has exited (by the end of the trial), with this code / success when given.
    Exit(ExitCheck),
    /// The service's output matches (and/or does not match) a regex.
    Output(OutputCheck),
    /// The service failed to bind a socket with this errno (and printed a message, when given).
    BindError(BindErrorCheck),
    /// What is listening in the service's host (the service's own sockets) or in a host.
    Listening(ListeningCheck),
    /// A TCP connect from a host to a target has this result.
    Connect(ConnectCheck),
    /// A line matching a regex appears within a window after a step.
    LineWithin(LineWithinCheck),
    /// No line matching a regex appears for a while after a step.
    NoLine(NoLineCheck),
    /// How long a client kept reaching the old target after a DNS change, and why.
    Stale(StaleCheck),
    /// How long after a client service started its first request reached a target, and over
    /// which family.
    FirstRequest(FirstRequestCheck),
    /// The cause of a service's failed bind, connect or socket call.
    Diagnosis(DiagnosisCheck),
    /// A client (a host or a service) sends no request to a target in a window after a step.
    NeverReaches(NeverReachesCheck),
    /// How many times, and how often, a host asked for a name in a window (the DNS traffic log).
    DnsQueries(DnsQueriesCheck),
    /// A host has (or never had) an address in a /64 in a state, as the kernel reported it
    /// (IPv6 provisioning by router advertisements).
    Address(AddressCheck),
}

impl Kind {
    /// The kind `name` names.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Every kind's name, as messages list them: `exit, output, ...`.
    pub fn names() -> String {
        Kind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn every_kind_has_its_own_name() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(Kind::from_name(k.name()), Some(*k), "{} names another kind first", k.name());
            assert!(Kind::ALL[..i].iter().all(|o| o != k), "{:?} is listed twice", k);
        }
    }
}
