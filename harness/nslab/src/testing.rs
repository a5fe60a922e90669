//! Writing your own lab tests: a test binary that runs as root, in rootless mode without root,
//! and reports its kernel tests as ignored (with the reason) where neither is possible.
//!
//! Lab tests need privileges a plain `#[test]` cannot ask for, and a test that silently passes
//! without them would lie. Declare the test binary with `harness = false` and let this module be
//! its `main`: it enters rootless mode first (before any thread exists, as the kernel requires),
//! then runs each test in its own tokio runtime. The test runner is [libtest-mimic], re-exported
//! here, so `cargo test`, `--list`, filters, `--ignored` and cargo-nextest work as usual.
//!
//! The runner needs the `testing` feature (it brings libtest-mimic, and with it clap, which a
//! library user's normal dependency tree should not carry unasked); [`enter`],
//! [`kernel_unavailable`] and [`require_all`] are always there.
//!
//! `Cargo.toml`:
//! ```toml
//! [dev-dependencies]
//! nslab = { version = "0.1", features = ["testing"] }
//! tokio = { version = "1", features = ["macros", "rt"] }
//!
//! [[test]]
//! name = "lab"
//! harness = false
//! ```
//!
//! `tests/lab.rs`:
//! ```no_run
//! # #[cfg(feature = "testing")] {
//! use nslab::testing::{self, Trial};
//! use nslab::{Command, Lab, Profile};
//! use std::time::Duration;
//!
//! fn main() -> std::process::ExitCode {
//!     testing::main(vec![
//!         testing::kernel_test("ping-over-ipv6", || async {
//!             let lab = Lab::builder().profile(Profile::Ipv6Only).host("a").host("b").build().await?;
//!             let b = lab.host("b")?.ipv6().expect("an IPv6-only host has an IPv6 address");
//!             let ping = lab.host("a")?.run(Command::new("ping").args(["-c1", "-W2", &b.to_string()]), Duration::from_secs(10)).await?;
//!             assert!(ping.exit().is_some_and(|e| e.success()), "{}", ping.stderr());
//!             lab.teardown().await?;
//!             Ok::<_, nslab::Error>(())
//!         }),
//!         // A test that needs no kernel runs everywhere.
//!         Trial::test("plain", || Ok(())),
//!     ])
//! }
//! # }
//! ```
//!
//! Set `NSLAB_REQUIRE_ALL=1` in CI: a kernel test that would be ignored fails instead, so a
//! runner that lost its privileges cannot pass by skipping everything.
//!
//! [libtest-mimic]: https://docs.rs/libtest-mimic

#[cfg(feature = "testing")]
use std::future::Future;
#[cfg(feature = "testing")]
use std::process::ExitCode;
use std::sync::OnceLock;

#[cfg(feature = "testing")]
pub use libtest_mimic::{Arguments, Failed, Trial};

pub use crate::os::rootless::{Blocked, Privileges};

/// The environment variable that turns a kernel test that would be ignored into a failure.
pub const REQUIRE_ALL_VAR: &str = "NSLAB_REQUIRE_ALL";

/// Reads a yes/no setting as `NSLAB_REQUIRE_ALL` is read: `1`, `true`, `yes`, `on`, `y`, `t`
/// (any case) are yes; unset-like values (`0`, `false`, `no`, `off`, `n`, `f`, empty) are no;
/// anything else is `None`.
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" | "t" => Some(true),
        "0" | "false" | "no" | "off" | "n" | "f" | "" => Some(false),
        _ => None,
    }
}

/// Whether `NSLAB_REQUIRE_ALL` asks for every requirement to be met (CI sets it).
pub fn require_all() -> bool {
    std::env::var(REQUIRE_ALL_VAR).ok().as_deref().and_then(parse_bool).unwrap_or(false)
}

/// What the first [`enter`] of this process found: the privileges, or the refused call's errno
/// (or message) and the advice.
type Entered = Result<Privileges, (Option<i32>, String, Vec<String>)>;
static ENTERED: OnceLock<Entered> = OnceLock::new();

/// Gives this process the privileges labs need: nothing to do as root; without root, moves it
/// into a user namespace of its own (rootless mode). Call it before any thread starts (the
/// kernel refuses the move in a multi-threaded process). Only the first call acts; later ones
/// return what it found. [`kernel_test`] and [`test_requiring`] call it (the trials given to
/// [`main`] are built before `main` runs, and must see the privileges their tests will have),
/// and so does [`main`].
///
/// # Errors
/// [`Blocked`] when the system forbids unprivileged user namespaces, naming the setting.
pub fn enter() -> Result<Privileges, Blocked> {
    let entered = ENTERED.get_or_init(|| crate::os::rootless::enter().map_err(|b| (b.source.raw_os_error(), b.source.to_string(), b.advice)));
    match entered {
        Ok(p) => Ok(*p),
        Err((code, text, advice)) => {
            Err(Blocked { source: code.map_or_else(|| std::io::Error::other(text.clone()), std::io::Error::from_raw_os_error), advice: advice.clone() })
        }
    }
}

/// Why this process cannot build labs, if it cannot: it lacks CAP_NET_ADMIN or CAP_SYS_ADMIN
/// (after [`enter`], a rootless process has both in its own namespaces).
pub fn kernel_unavailable() -> Option<String> {
    // CAP_NET_ADMIN is capability 12, CAP_SYS_ADMIN 21 (linux/capability.h).
    let caps = crate::sys::effective_caps().unwrap_or(0);
    let need = (1u64 << 12) | (1u64 << 21);
    (caps & need != need).then(|| "needs CAP_NET_ADMIN and CAP_SYS_ADMIN: run as root, or allow unprivileged user namespaces for rootless mode".to_string())
}

/// Whether `program` is an executable file on `PATH`.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

#[cfg(feature = "testing")]
/// A test that builds labs: `f` runs in a current-thread tokio runtime of its own; an error it
/// returns fails the test, with its message. Ignored where this process cannot build labs
/// (see [`kernel_unavailable`]; rootless mode is entered first, see [`enter`]), failed instead
/// under `NSLAB_REQUIRE_ALL=1`.
pub fn kernel_test<F, Fut, E>(name: impl Into<String>, f: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    test_requiring(name, &[], f)
}

#[cfg(feature = "testing")]
/// [`kernel_test`] that also needs `programs` on `PATH`: ignored where one is missing (failed
/// under `NSLAB_REQUIRE_ALL=1`), so a machine without, say, nginx reports the test as ignored
/// rather than failed or passed.
pub fn test_requiring<F, Fut, E>(name: impl Into<String>, programs: &[&str], f: F) -> Trial
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let name = name.into();
    // Trials are usually built in main's argument list, before main enters rootless mode.
    let _ = enter();
    let mut missing = kernel_unavailable();
    if missing.is_none() {
        let absent: Vec<&str> = programs.iter().copied().filter(|p| !have(p)).collect();
        if !absent.is_empty() {
            missing = Some(format!("needs {} on PATH", absent.join(", ")));
        }
    }
    let strict = require_all();
    let ignored = missing.is_some() && !strict;
    Trial::test(name, move || {
        if let Some(why) = missing {
            return Err(Failed::from(format!("required: {why} ({REQUIRE_ALL_VAR}=1)")));
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| Failed::from(format!("tokio runtime: {e}")))?;
        rt.block_on(f()).map_err(|e| Failed::from(e.to_string()))
    })
    .with_ignored_flag(ignored)
}

#[cfg(feature = "testing")]
/// The `main` of a `harness = false` test binary: enters rootless mode without root ([`enter`]),
/// says on stderr why kernel tests are ignored when they are, then runs `trials` with the
/// command line's arguments (filters, `--list`, `--ignored`, `--exact` ...).
///
/// The notes on stderr are the test runner's output, as libtest's own are; nothing else in nslab
/// prints.
pub fn main(trials: Vec<Trial>) -> ExitCode {
    // Before libtest-mimic parses arguments or starts threads: unshare needs one thread.
    let entered = enter();
    let args = Arguments::from_args();
    match entered {
        Ok(Privileges::Rootless) if !args.list => eprintln!("note: not root: running in rootless mode (a user namespace of this test's own)"),
        Err(e) if require_all() => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        Err(e) if !args.list => eprintln!("note: {e}"),
        _ => {}
    }
    if let (Some(why), false, false) = (kernel_unavailable(), require_all(), args.list) {
        eprintln!("note: kernel tests are ignored here: {why}");
    }
    let conclusion = libtest_mimic::run(&args, trials);
    for (lab, path) in kept_by_drop() {
        eprintln!("nslab: lab {lab} was not torn down (error or panic); artifacts kept in {}", path.display());
    }
    conclusion.exit_code()
}

/// The artifact directories kept in this process by labs dropped without teardown (after an
/// error or a panic), as (lab name, path): the evidence a failed test must point to. [`main`]
/// prints them when the tests end; a test binary of its own can do the same.
pub fn kept_by_drop() -> Vec<(String, std::path::PathBuf)> {
    crate::os::artifacts::kept_by_drop()
}
