//! Argument values several subcommands take.

use nslab::Profile;

/// A profile's name (`--profile ipv6-only`), with the list of names when it is none.
pub(crate) fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse::<Profile>().map_err(|e| e.to_string())
}
