//! Clock reads: the wall and monotonic clocks return program time.

use libc::{c_int, c_void, clockid_t, time_t, timespec, timeval};

use crate::real::{real_clock_gettime, real_fn};
use crate::warp::{ns_ts, to_program, ts_ns, warp_of};

type ClockGettime = unsafe extern "C" fn(clockid_t, *mut timespec) -> c_int;

/// Program time now on clock `c`, in nanoseconds (real time when `c` is not warped).
pub(crate) fn program_now(c: clockid_t) -> i64 {
    let mut ts = timespec { tv_sec: 0, tv_nsec: 0 };
    real_clock_gettime(c, &mut ts);
    match warp_of(c) {
        Some((k, o)) => to_program(k, o, ts_ns(&ts)),
        None => ts_ns(&ts),
    }
}

/// `clock_gettime(2)`: program time on the warped clocks.
///
/// # Safety
/// As the C function: `tp` is null (EFAULT from the kernel) or points to a writable timespec.
#[no_mangle]
pub unsafe extern "C" fn clock_gettime(c: clockid_t, tp: *mut timespec) -> c_int {
    let f = real_fn!(clock_gettime: ClockGettime);
    // SAFETY: the caller's arguments, passed on as given.
    let r = unsafe { f(c, tp) };
    if r == 0 && !tp.is_null() {
        if let Some((k, o)) = warp_of(c) {
            // SAFETY: the call succeeded, so `tp` is a valid timespec it wrote.
            let tp = unsafe { &mut *tp };
            *tp = ns_ts(to_program(k, o, ts_ns(tp)));
        }
    }
    r
}

/// `gettimeofday(2)`: program time on `CLOCK_REALTIME`.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn gettimeofday(tv: *mut timeval, tz: *mut c_void) -> c_int {
    type F = unsafe extern "C" fn(*mut timeval, *mut c_void) -> c_int;
    let f = real_fn!(gettimeofday: F);
    // SAFETY: the caller's arguments, passed on as given.
    let r = unsafe { f(tv, tz) };
    if r == 0 && !tv.is_null() {
        if let Some((k, o)) = warp_of(libc::CLOCK_REALTIME) {
            // SAFETY: the call succeeded and wrote `tv`.
            let tv = unsafe { &mut *tv };
            let ns = to_program(k, o, tv.tv_sec.saturating_mul(1_000_000_000).saturating_add(tv.tv_usec * 1000));
            tv.tv_sec = ns.div_euclid(1_000_000_000) as time_t;
            tv.tv_usec = (ns.rem_euclid(1_000_000_000) / 1000) as libc::suseconds_t;
        }
    }
    r
}

/// `time(2)`: program seconds on `CLOCK_REALTIME`.
///
/// # Safety
/// As the C function: `t` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn time(t: *mut time_t) -> time_t {
    let secs = if warp_of(libc::CLOCK_REALTIME).is_some() {
        program_now(libc::CLOCK_REALTIME).div_euclid(1_000_000_000) as time_t
    } else {
        type F = unsafe extern "C" fn(*mut time_t) -> time_t;
        let f = real_fn!(time: F);
        // SAFETY: a null pointer: time() only returns the value.
        unsafe { f(std::ptr::null_mut()) }
    };
    if !t.is_null() {
        // SAFETY: the caller passed a writable time_t.
        unsafe { *t = secs };
    }
    secs
}

/// `timespec_get(3)` (C11): program time for `TIME_UTC`.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn timespec_get(ts: *mut timespec, base: c_int) -> c_int {
    const TIME_UTC: c_int = 1;
    if base != TIME_UTC || ts.is_null() {
        type F = unsafe extern "C" fn(*mut timespec, c_int) -> c_int;
        let f = real_fn!(timespec_get: F);
        // SAFETY: the caller's arguments, passed on as given.
        return unsafe { f(ts, base) };
    }
    // SAFETY: `ts` is not null and, per the contract, writable.
    if unsafe { clock_gettime(libc::CLOCK_REALTIME, ts) } == 0 {
        base
    } else {
        0
    }
}
