//! The command line: the subcommands, their help, and which file's arguments each takes.

use clap::{Parser, Subcommand};

use crate::cmd::{bundle, capture, demo, dns, down, exec, list, matrix, replay, run, serve, status, up, validate};

/// Reproduce network-environment bugs in isolated Linux network namespaces.
///
/// A scenario file (TOML, see scenarios/README.md) describes an incident: hosts in an
/// address-family profile (ipv4-only, dual-stack, ipv6-only, link-local-only), a DNS server with
/// zones, the real programs to run, what happens over time (a CNAME swap, a link going down) and
/// what must be observed (an errno, a log line, which target a client reached, within how long).
/// Each scenario runs once per profile it lists.
///
/// Examples:
///   nslab validate scenarios/                 check every file (no privileges needed)
///   nslab list scenarios/                     the trials they make
///   nslab list --addresses x.toml             and each host's addresses per trial
///   sudo nslab run scenarios/stale-dns        run them; exit 0 only if every expectation held
///   sudo nslab run x.toml --profile ipv6-only --keep --json out.json --junit junit.xml
///   sudo nslab matrix scenarios/bind --format html -o matrix.html
///                                             the table to read before a migration
///   sudo nslab demo                           what connects and what fails, per profile
///   nslab bundle ARTIFACT_DIR -o x.nslab      one file to reproduce a trial elsewhere
///   sudo nslab replay x.nslab                 run it again here, side by side with the recorded
#[derive(Parser)]
#[command(name = "nslab", version, verbatim_doc_comment)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) cmd: Cmd,
}

/// The subcommands (their doc comments are their help).
#[derive(Subcommand)]
pub(crate) enum Cmd {
    /// Run scenarios (files or folders) and report every expectation.
    Run(run::RunArgs),
    /// Run scenarios and print the compatibility matrix: scenarios (programs and versions) by
    /// profile, each cell the outcome in words, linked to its artifacts (kept).
    Matrix(matrix::MatrixArgs),
    /// List the trials scenarios make, one name per line.
    List(list::ListArgs),
    /// Check scenario files without running them (no privileges needed).
    Validate(validate::ValidateArgs),
    /// What this machine can do: privileges, kernel features, the programs scenarios run.
    Doctor,
    /// Build a lab in each profile and show what connects and what fails.
    Demo(demo::DemoArgs),
    /// Bring a lab up and keep it running in the background: a scenario's hosts, DNS, targets
    /// and services, or plain hosts in a profile. Step in with `exec`/`shell`, change DNS with
    /// `dns`, end it with `down`.
    #[command(verbatim_doc_comment, after_help = up::UP_HELP)]
    Up(up::UpArgs),
    /// Run a command inside a host of a running lab (its network, /etc files, /run, /tmp and host name).
    Exec(exec::ExecArgs),
    /// An interactive shell inside a host of a running lab.
    Shell(exec::ShellArgs),
    /// Change or read the DNS server of a running lab, live: `nslab dns LAB set|swap|delete|
    /// ttl|fault|clear|show|log ...` (`nslab dns LAB --help` lists them).
    Dns(dns::DnsCmdArgs),
    /// The packets of a running lab's links as pcapng, live: `nslab capture LAB [HOST...]
    /// | wireshark -k -i -`, or `-o FILE`.
    Capture(capture::CaptureArgs),
    /// Running labs: their hosts, addresses, namespaces, DNS and services.
    Status(status::StatusArgs),
    /// Tear labs down (their artifacts are kept; the path is printed).
    Down(down::DownArgs),
    /// Remove what labs whose daemon died (kill -9, a crash) left behind: named network
    /// namespaces and state directories, and the artifact directories of runs that died.
    /// Goes by what nslab recorded, never by names: running labs, labs of another state
    /// directory and other users' files are not touched.
    Gc,
    /// Write one file (a compressed archive) with a trial's scenario and its files, its
    /// artifacts and the machine's facts, to reproduce it elsewhere with `nslab replay`.
    Bundle(bundle::BundleArgs),
    /// Check a bundle, extract it into a fresh directory, say how this machine differs, run
    /// the same trial and print both results side by side. Exit 0 when it ended as recorded,
    /// 1 when not, 2 when the bundle is refused or cannot run.
    Replay(replay::ReplayArgs),
    /// The daemon of `nslab up` (started by it; not for direct use).
    #[command(name = "__serve", hide = true)]
    Serve(serve::ServeArgs),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Clap's own checks of the definitions (conflicting names, bad `requires`, ...), which
    /// otherwise only fail when the faulty argument is used.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
