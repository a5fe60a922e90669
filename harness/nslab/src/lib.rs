//! nslab: integration tests inside isolated Linux network namespaces.
//!
//! A [`Lab`] is a set of named hosts, each with its own network namespace, joined by a switch
//! in a lab-private namespace. A [`Profile`] decides which address families the hosts have.
//! Programs run inside hosts with the lab's own `/etc/hosts` and `/etc/resolv.conf`, and never
//! outlive the lab or the harness. Each host has its own `/run`, `/tmp` and `/var/tmp`, shared
//! by its programs and seen by nothing else; [`HostSpec::private`] gives it its own copy of any
//! other directory.
//!
//! ```no_run
//! use std::time::Duration;
//! use nslab::{Command, Lab, Listen, Profile};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let lab = Lab::builder().profile(Profile::DualStack).host("server").host("client").build().await?;
//! let (server, client) = (lab.host("server")?, lab.host("client")?);
//!
//! // A real program inside a host, awaited until the kernel shows its listening socket.
//! let web = server.spawn(Command::new("python3").args(["-m", "http.server", "8000", "--bind", "::"])).await?;
//! server.wait_listening(&Listen::tcp(8000), Duration::from_secs(5), Some(&web)).await?;
//!
//! // Another one as a client; its exit status and output are read back.
//! let url = format!("http://[{}]:8000/", server.ipv6().unwrap());
//! let curl = client.run(Command::new("curl").args(["-sS", &url]), Duration::from_secs(5)).await?;
//! assert!(curl.exit().unwrap().success());
//! assert!(curl.stdout().contains("Directory listing"));
//!
//! // The test's own async code "on" a host: this socket lives in the client's namespace.
//! let mut conn = client.connect_tcp((server.ipv4().unwrap(), 8000).into()).await?;
//! conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
//! let mut reply = String::new();
//! conn.read_to_string(&mut reply).await?;
//! assert!(reply.starts_with("HTTP/1.0 200"));
//!
//! // Ends every process, releases every namespace, reports every failure together.
//! lab.teardown().await?;
//! # Ok(()) }
//! ```
//!
//! # Privileges: root or rootless
//!
//! Building a lab needs CAP_NET_ADMIN and CAP_SYS_ADMIN. As root the process has them. Without
//! root, [`testing::enter`] moves the process into a user namespace of its own (rootless mode:
//! the caller's user is root there, with a network namespace of its own, and nothing of the
//! machine's network is reachable) before any thread starts; labs are then built there exactly as
//! root would. Where the system forbids unprivileged user namespaces, the error names the setting.
//!
//! # Writing tests
//!
//! [`testing`] is the `main` of a `harness = false` test binary: it enters rootless mode when
//! not root, runs each test in a tokio runtime of its own, and reports a kernel test as ignored
//! (with the reason) where labs cannot be built, or failed under `NSLAB_REQUIRE_ALL=1`. Every
//! error of the library converts into [`Error`], so a test returns [`Result`] and uses `?`
//! throughout. The crate's `examples/` (`stale_dns`, `bind_failure`) are complete test programs.
//!
//! The caller owns the tokio runtime. The library reports through return values and `tracing`;
//! it writes to stderr only where a test would otherwise lose evidence (a lab dropped without
//! teardown says where its artifacts were kept) and, in [`testing::main`], as a test runner does.

#![warn(missing_docs)]

#[doc(hidden)]
pub mod addr;
mod chain;
pub mod dns;
pub mod error;
#[doc(hidden)]
pub mod host;
#[doc(hidden)]
pub mod lab;
#[doc(hidden)]
pub mod os;
#[doc(hidden)]
pub mod sys;
pub mod testing;
pub mod time;

pub use addr::plan::LAB_DOMAIN;
pub use addr::profile::Profile;
pub use error::{Error, Result, TeardownError};
pub use host::etc::ResolvOptions;
pub use host::handle::Host;
pub use host::listeners::{Family, Listen, Listener, Protocol};
pub use host::output::{Line, Stream};
pub use host::process::{Command, Exit, Process};
pub use lab::build::{Lab, LabBuilder};
pub use lab::dns_host::{LabDns, DNS_HOST};
pub use lab::spec::{HostSpec, Resolver};
pub use lab::tap::DnsTap;
/// The signals [`Process::signal`] sends (nix's type, re-exported so a test needs no nix).
pub use nix::sys::signal::Signal;
pub use os::netns::NetNs;
pub use time::TimeWarp;

/// The README's examples, compiled as doctests so they stay true. Some use `nslab::testing`, so
/// they are compiled with the `testing` feature (`cargo test --workspace` enables it).
#[doc = include_str!("../../../README.md")]
#[cfg(all(doctest, feature = "testing"))]
pub struct ReadmeDoctests;
