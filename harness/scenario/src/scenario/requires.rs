//! Programs a scenario needs: version constraints, how to ask a program its version, and how to
//! read the version out of the answer. Nothing here runs a program.

use std::fmt;
use std::sync::LazyLock;

pub use semver::Version;

/// A version constraint as written in `[requires]`: `"*"`, `">=17"`, `">=20.1, <22"` (the
/// comparators of the `semver` crate; a bare `"17"` means `^17`, i.e. `>=17, <18`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionConstraint {
    text: String,
    req: semver::VersionReq,
}

impl VersionConstraint {
    /// Parses a constraint.
    ///
    /// # Errors
    /// A message saying what is wrong and what is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        semver::VersionReq::parse(text.trim())
            .map(|req| Self { text: text.trim().to_string(), req })
            .map_err(|e| format!("{text:?} is not a version constraint ({e}); expected \"*\", \">=17\" or \">=20.1, <22\""))
    }

    /// Whether `v` satisfies the constraint.
    pub fn matches(&self, v: &Version) -> bool {
        self.req.matches(v)
    }

    /// Whether any version satisfies it (`"*"`): presence is enough, no probe needed.
    pub fn is_any(&self) -> bool {
        self.req.comparators.is_empty()
    }

    /// The constraint as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for VersionConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A program the scenario needs, from `[requires]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Program name as found on `PATH` (`java`, `gunicorn`).
    pub program: String,
    /// Versions that will do.
    pub version: VersionConstraint,
}

/// Which output stream of a probe holds the version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeStream {
    /// Standard output.
    Stdout,
    /// Standard error (`java -version`, `nginx -v`).
    Stderr,
    /// Either: look at both, stdout first.
    Both,
}

/// How to ask a program its version: run `program args...` and read `stream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Where the version appears.
    pub stream: ProbeStream,
}

/// How to ask `program` its version. Known programs have their own flags; any other program is
/// asked with `--version`, reading both streams.
pub fn version_probe(program: &str) -> Probe {
    use ProbeStream::*;
    let (args, stream): (&[&str], ProbeStream) = match program {
        "java" => (&["-version"], Stderr),
        "python3" | "python" => (&["--version"], Both),
        "gunicorn" => (&["--version"], Both),
        "nginx" => (&["-v"], Stderr),
        "redis-server" => (&["--version"], Stdout),
        "curl" => (&["--version"], Stdout),
        "dig" => (&["-v"], Stderr),
        "node" => (&["--version"], Stdout),
        "psql" | "postgres" => (&["--version"], Stdout),
        "haproxy" => (&["-v"], Stdout),
        "dnsmasq" => (&["--version"], Stdout),
        "knotd" => (&["--version"], Stdout),
        "nsd" => (&["-v"], Stderr),
        // tayga has no version flag; its usage text (on stderr) carries the version.
        "tayga" => (&["--help"], Both),
        "strace" => (&["-V"], Stdout),
        _ => (&["--version"], Both),
    };
    Probe { program: program.to_string(), args: args.iter().map(|s| s.to_string()).collect(), stream }
}

static VERSION_RE: LazyLock<regex::Regex> = LazyLock::new(|| regex::Regex::new(r"(\d+)\.(\d+)(?:\.(\d+))?").expect("constant regex"));

/// The first `N.N` or `N.N.N` in a probe's output, as a version (a missing patch is 0):
/// `openjdk version "17.0.13"` gives 17.0.13, `gunicorn (version 20.1.0)` 20.1.0,
/// `Python 3.11` 3.11.0, `java version "1.8.0_131"` 1.8.0.
pub fn extract_version(output: &str) -> Option<Version> {
    let c = VERSION_RE.captures(output)?;
    let n = |i: usize| c.get(i).map_or(Some(0), |m| m.as_str().parse::<u64>().ok());
    Some(Version::new(n(1)?, n(2)?, n(3)?))
}

/// Checks a program name from `[requires]`: a file name, not a path.
pub(crate) fn check_program(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c)) || name.starts_with('.') {
        return Err(format!(
            "program name {name:?} is not valid; expected a program looked up on PATH such as java or redis-server (letters, digits, '.', '_', '+', '-')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn constraints_match() {
        let any = VersionConstraint::parse("*").unwrap();
        assert!(any.is_any() && any.matches(&v("0.1.0")));
        let ge17 = VersionConstraint::parse(">=17").unwrap();
        assert!(ge17.matches(&v("17.0.13")) && ge17.matches(&v("21.0.0")) && !ge17.matches(&v("11.0.2")));
        assert!(!ge17.matches(&v("1.8.0")));
        let range = VersionConstraint::parse(">=20.1, <22").unwrap();
        assert!(range.matches(&v("20.1.0")) && range.matches(&v("21.2.0")));
        assert!(!range.matches(&v("20.0.9")) && !range.matches(&v("22.0.0")));
        assert_eq!(range.to_string(), ">=20.1, <22");
    }

    #[test]
    fn bad_constraints_are_refused() {
        let e = VersionConstraint::parse("newest").unwrap_err();
        assert!(e.starts_with("\"newest\" is not a version constraint ("), "{e}");
        assert!(e.ends_with("expected \"*\", \">=17\" or \">=20.1, <22\""));
        assert!(VersionConstraint::parse(">=").is_err());
    }

    #[test]
    fn versions_from_real_probe_output() {
        let cases = [
            ("openjdk version \"17.0.13\" 2024-10-15\nOpenJDK Runtime Environment", "17.0.13"),
            ("java version \"1.8.0_131\"", "1.8.0"),
            ("Python 3.11.2", "3.11.2"),
            ("gunicorn (version 20.1.0)", "20.1.0"),
            ("nginx version: nginx/1.22.1", "1.22.1"),
            ("Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0 bits=64", "7.0.15"),
            ("curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1", "7.88.1"),
            ("DiG 9.18.33-1~deb12u2-Debian", "9.18.33"),
            ("v20.19.2", "20.19.2"),
            ("psql (PostgreSQL) 15.13 (Debian 15.13-0+deb12u1)", "15.13.0"),
            ("HAProxy version 2.6.12-1+deb12u2 2025/01/01", "2.6.12"),
            ("NSD version 4.6.1", "4.6.1"),
            ("strace -- version 6.1", "6.1.0"),
        ];
        for (out, want) in cases {
            assert_eq!(extract_version(out), Some(v(want)), "{out}");
        }
        assert_eq!(extract_version("no digits here"), None);
        assert_eq!(extract_version("build 2024-10-15"), None);
    }

    #[test]
    fn probes_for_known_and_unknown_programs() {
        let java = version_probe("java");
        assert_eq!((java.args.as_slice(), java.stream), (&["-version".to_string()][..], ProbeStream::Stderr));
        assert_eq!(version_probe("nginx").args, vec!["-v"]);
        assert_eq!(version_probe("dig").args, vec!["-v"]);
        assert_eq!(version_probe("haproxy").args, vec!["-v"]);
        let other = version_probe("envoy");
        assert_eq!((other.args, other.stream), (vec!["--version".to_string()], ProbeStream::Both));
        assert!(check_program("redis-server").is_ok());
        assert!(check_program("/usr/bin/java").is_err());
    }
}
