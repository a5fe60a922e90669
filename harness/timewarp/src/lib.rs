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

pub mod clocks;
pub mod sync;
pub mod waits;

use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed};

use libc::{c_char, clockid_t, timespec};

/// Looks up the C library's own `name` once (`dlsym(RTLD_NEXT)`) and caches it.
macro_rules! real {
    ($name:ident: $ty:ty) => {{
        static PTR: ::std::sync::atomic::AtomicUsize = ::std::sync::atomic::AtomicUsize::new(0);
        let f = $crate::resolve(&PTR, concat!(stringify!($name), "\0"));
        // SAFETY: `f` is the address dlsym returned for this very symbol of the C library,
        // whose C type is `$ty`; resolve() never returns 0 (it aborts instead).
        unsafe { ::std::mem::transmute::<usize, $ty>(f) }
    }};
}
pub(crate) use real;

/// The address of the next definition of `name` (NUL-terminated), cached in `slot`.
pub(crate) fn resolve(slot: &AtomicUsize, name: &str) -> usize {
    let f = slot.load(Relaxed);
    if f != 0 {
        return f;
    }
    // SAFETY: `name` is NUL-terminated (the macro appends it); RTLD_NEXT asks for the
    // definition after this library's, the C library's own.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast::<c_char>()) } as usize;
    if f == 0 {
        // A function the C library lacks cannot have been called through us either (the
        // program linked against it); this is only reached by a broken installation.
        let msg = b"nslab-timewarp: the C library lacks a function this preload replaces\n";
        // SAFETY: writes a static buffer to stderr, then ends the process.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::abort();
        }
    }
    slot.store(f, Relaxed);
    f
}

/// Like `resolve`, but 0 when the C library lacks the function (one newer than it).
pub(crate) fn resolve_optional(slot: &AtomicUsize, name: &str) -> usize {
    let f = slot.load(Relaxed);
    if f > 1 {
        return f;
    }
    if f == 1 {
        return 0;
    }
    // SAFETY: as in resolve().
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast::<c_char>()) } as usize;
    slot.store(if f == 0 { 1 } else { f }, Relaxed);
    f
}

const NS: i64 = 1_000_000_000;
/// Clock ids up to CLOCK_TAI (11).
const CLOCKS: usize = 12;

/// 0: not read yet, 1: no warp (pass everything through), 2: warped.
static STATE: AtomicU8 = AtomicU8::new(0);
static SCALE: AtomicU64 = AtomicU64::new(0);
/// The origin on each warped clock, in nanoseconds (unused for clocks that are not warped).
static ORIGIN: [AtomicI64; CLOCKS] = [const { AtomicI64::new(0) }; CLOCKS];
/// Byte offset in `pthread_cond_t` of the word whose bit 1 is the condition variable's clock
/// (glibc's `__wrefs`), found by experiment at start-up; -1 when it could not be found.
static COND_CLOCK_WORD: AtomicI32 = AtomicI32::new(-1);

/// Whether clock `c` is warped: the wall and monotonic clocks and their variants. CPU-time
/// clocks (and dynamic clocks, negative ids) are not.
fn warped_clock(c: clockid_t) -> bool {
    matches!(
        c,
        libc::CLOCK_REALTIME
            | libc::CLOCK_MONOTONIC
            | libc::CLOCK_MONOTONIC_RAW
            | libc::CLOCK_REALTIME_COARSE
            | libc::CLOCK_MONOTONIC_COARSE
            | libc::CLOCK_BOOTTIME
            | libc::CLOCK_REALTIME_ALARM
            | libc::CLOCK_BOOTTIME_ALARM
            | libc::CLOCK_TAI
    )
}

/// The warp's scale, or `None` when this process is not warped.
pub(crate) fn scale() -> Option<f64> {
    match STATE.load(Relaxed) {
        2 => Some(f64::from_bits(SCALE.load(Relaxed))),
        1 => None,
        _ => {
            init();
            scale()
        }
    }
}

/// The scale and the origin of clock `c` when `c` is warped in this process.
pub(crate) fn warp_of(c: clockid_t) -> Option<(f64, i64)> {
    let k = scale()?;
    if !warped_clock(c) {
        return None;
    }
    Some((k, ORIGIN[c as usize].load(Relaxed)))
}

pub(crate) fn ts_ns(ts: &timespec) -> i64 {
    (ts.tv_sec as i64).saturating_mul(NS).saturating_add(ts.tv_nsec as i64)
}

pub(crate) fn ns_ts(ns: i64) -> timespec {
    timespec { tv_sec: ns.div_euclid(NS) as libc::time_t, tv_nsec: ns.rem_euclid(NS) as libc::c_long }
}

/// Program time of the real reading `real` of a clock with origin `o`.
pub(crate) fn to_program(k: f64, o: i64, real: i64) -> i64 {
    o.saturating_add(((real.saturating_sub(o)) as f64 * k).round() as i64)
}

/// The real instant of the program deadline `prog` on a clock with origin `o`, rounded up.
pub(crate) fn to_real_deadline(k: f64, o: i64, prog: i64) -> i64 {
    o.saturating_add(((prog.saturating_sub(o)) as f64 / k).ceil() as i64)
}

/// Real length of a program duration, rounded up (a positive wait stays positive).
pub(crate) fn shorten(k: f64, d: i64) -> i64 {
    if d <= 0 {
        d
    } else {
        ((d as f64 / k).ceil() as i64).max(1)
    }
}

/// Program length of a real duration.
pub(crate) fn lengthen(k: f64, d: i64) -> i64 {
    (d as f64 * k).round() as i64
}

/// A relative program timeout as the real timeout to pass on.
pub(crate) fn shorten_ts(k: f64, ts: &timespec) -> timespec {
    ns_ts(shorten(k, ts_ns(ts)))
}

/// An absolute program deadline on clock `c` as the real deadline to pass on (unchanged when
/// `c` is not warped, or when the deadline is so far it means "never").
pub(crate) fn deadline_ts(c: clockid_t, ts: &timespec) -> timespec {
    match warp_of(c) {
        // Beyond year 2262 in nanoseconds: a program's "forever", left as it is.
        Some((k, o)) if (ts.tv_sec as i64) < i64::MAX / NS - 1 => ns_ts(to_real_deadline(k, o, ts_ns(ts)).max(0)),
        _ => *ts,
    }
}

fn parse_env() -> Option<(f64, i64, i64)> {
    // SAFETY: getenv with a NUL-terminated name; the result is read before any setenv could run
    // in this thread, and only as far as its NUL.
    let p = unsafe { libc::getenv(c"NSLAB_TIMEWARP".as_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: getenv returned a NUL-terminated string.
    let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_str().ok()?;
    let mut w = s.split(' ');
    let k: f64 = w.next()?.parse().ok()?;
    let m0: i64 = w.next()?.parse().ok()?;
    let w0: i64 = w.next()?.parse().ok()?;
    if w.next().is_some() || !k.is_finite() || !(1.0..=1000.0).contains(&k) {
        return None;
    }
    Some((k, m0, w0))
}

/// Reads the warp from the environment and the origins of every warped clock.
fn init() {
    let Some((k, m0, w0)) = parse_env() else {
        STATE.store(1, Relaxed);
        return;
    };
    let real = |c| {
        let mut ts = timespec { tv_sec: 0, tv_nsec: 0 };
        clocks::real_clock_gettime(c, &mut ts);
        ts_ns(&ts)
    };
    for c in 0..CLOCKS as clockid_t {
        if !warped_clock(c) {
            continue;
        }
        // The variants keep their distance to the clock they follow (BOOTTIME includes suspend
        // time, TAI the leap seconds, RAW has no NTP slew): their origin is as far from the
        // harness's origin as they are from its clock now.
        let o = match c {
            libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE | libc::CLOCK_REALTIME_ALARM => w0,
            libc::CLOCK_MONOTONIC | libc::CLOCK_MONOTONIC_COARSE => m0,
            libc::CLOCK_TAI => w0 + (real(c) - real(libc::CLOCK_REALTIME)),
            _ => m0 + (real(c) - real(libc::CLOCK_MONOTONIC)),
        };
        ORIGIN[c as usize].store(o, Relaxed);
    }
    COND_CLOCK_WORD.store(sync::find_cond_clock_word(), Relaxed);
    SCALE.store(k.to_bits(), Relaxed);
    STATE.store(2, Relaxed);
}

/// Reads the warp when the library is loaded, before the program's own code runs.
extern "C" fn load() {
    if STATE.load(Relaxed) == 0 {
        init();
    }
}

#[used]
#[link_section = ".init_array"]
static LOAD: extern "C" fn() = load;
