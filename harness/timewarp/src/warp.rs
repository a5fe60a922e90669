//! The warp of this process: its scale and origins, read from the environment once, and the
//! conversions between real and program time.

use std::sync::atomic::{
    AtomicI64, AtomicU64, AtomicU8,
    Ordering::{Acquire, Relaxed, Release},
};

use libc::{clockid_t, timespec};

const NS: i64 = 1_000_000_000;
/// Clock ids up to CLOCK_TAI (11).
const CLOCKS: usize = 12;

/// Not read yet.
const UNREAD: u8 = 0;
/// No warp: everything passes through.
const OFF: u8 = 1;
/// Warped: [`SCALE`] and [`ORIGIN`] hold it.
const ON: u8 = 2;
/// Being read by [`init`]. Its own calls into the C library can come back here: dig's
/// allocator (jemalloc) reads the clock inside `malloc`, and `dlsym` may allocate. They, and any
/// other thread meanwhile, see real time instead of reading the warp again, which recursed until
/// the stack overflowed (dig crashed at start with SIGSEGV).
const READING: u8 = 3;

static STATE: AtomicU8 = AtomicU8::new(UNREAD);
static SCALE: AtomicU64 = AtomicU64::new(0);
/// The origin on each warped clock, in nanoseconds (unused for clocks that are not warped).
static ORIGIN: [AtomicI64; CLOCKS] = [const { AtomicI64::new(0) }; CLOCKS];

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
    match STATE.load(Acquire) {
        ON => Some(f64::from_bits(SCALE.load(Relaxed))),
        UNREAD => {
            if STATE.compare_exchange(UNREAD, READING, Acquire, Acquire).is_ok() {
                init();
            }
            match STATE.load(Acquire) {
                ON => Some(f64::from_bits(SCALE.load(Relaxed))),
                _ => None,
            }
        }
        _ => None, // OFF, or READING (see READING)
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
    ts.tv_sec.saturating_mul(NS).saturating_add(ts.tv_nsec)
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
        Some((k, o)) if ts.tv_sec < i64::MAX / NS - 1 => ns_ts(to_real_deadline(k, o, ts_ns(ts)).max(0)),
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

/// Reads the warp from the environment and the origins of every warped clock; called by the
/// one thread that moved [`STATE`] from UNREAD to READING.
fn init() {
    let Some((k, m0, w0)) = parse_env() else {
        STATE.store(OFF, Release);
        return;
    };
    let real = |c| {
        let mut ts = timespec { tv_sec: 0, tv_nsec: 0 };
        crate::real::real_clock_gettime(c, &mut ts);
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
    crate::condvar::CLOCK_WORD.store(crate::condvar::find_clock_word(), Relaxed);
    SCALE.store(k.to_bits(), Relaxed);
    STATE.store(ON, Release);
}

/// Reads the warp when the library is loaded, before the program's own code runs.
pub(crate) extern "C" fn load() {
    let _ = scale();
}
