//! nslab's time-warp preload: loaded into a lab program with `LD_PRELOAD`, it makes the
//! program's clocks and timed waits run `k` times faster than real time, consistently.
//!
//! The warp comes in the environment variable `NSLAB_TIMEWARP` = `SCALE MONO_NS REAL_NS`
//! (what `nslab::TimeWarp::env_value` writes): the scale k and the origin O on the real
//! `CLOCK_MONOTONIC` and `CLOCK_REALTIME`. Without it (or with a value it cannot read) every
//! function here is the C library's own. With it:
//!
//! - every clock read returns program time `O + (t - O) * k` ([`clocks`]: `clock_gettime` of the
//!   wall and monotonic clocks, `gettimeofday`, `time`, `timespec_get`);
//! - every timed wait lasts (program duration) / k of real time ([`waits`]: sleeps, `poll`,
//!   `select`, `epoll_wait`, `timerfd`, `setitimer`, `alarm`; [`sync`]: condition variables,
//!   semaphores, timed locks and joins, `futex` through `syscall()`); an absolute deadline on a
//!   warped clock becomes the real instant whose program time it is, rounded up, so that a
//!   program reading its clock after the wait never finds the deadline still ahead.
//!
//! Every process the program starts inherits the environment, so it is warped with the same
//! origin: the harness converts all their observations with one formula.
//!
//! What it cannot reach (nslab refuses or documents it, see ARCHITECTURE.md "Time warp"):
//! statically linked programs, programs that read the vDSO or make system calls themselves (Go),
//! and timers inside the kernel (TCP retransmission and connect timeouts, DAD, neighbour
//! timers), which stay real.
//!
//! # Why this crate allows `unsafe`
//!
//! The workspace denies `unsafe_code` outside `nslab::sys`. A preload library is nothing but
//! C-ABI functions that replace the C library's, receive raw pointers from C callers and call the
//! C library's own through pointers from `dlsym(RTLD_NEXT)`: that cannot be written without
//! `unsafe`. The exception is this crate alone; each `unsafe` block says why it holds.
//!
//! It uses only `libc` and no Rust allocation or lock on any path a clock read or wait takes:
//! the functions run in every thread of a JVM, at high rates, and inside the C library's own
//! start-up.

#![allow(unsafe_code)]

// time_t, suseconds_t and the timespec fields are i64 on the 64-bit Linux targets nslab runs on
// (x86_64, aarch64), which the conversions rely on.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
compile_error!("nslab-timewarp supports 64-bit Linux only");

pub mod clocks;
mod condvar;
mod real;
pub mod stamps;
pub mod sync;
pub mod waits;
mod warp;

/// Reads the warp when the library is loaded, before the program's own code runs.
#[used]
#[link_section = ".init_array"]
static LOAD: extern "C" fn() = warp::load;
