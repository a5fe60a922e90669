//! Sleeps, I/O waits with a timeout, and timers: a program duration lasts duration / k of real
//! time, and what the kernel reports back (time left, a timer's value) is in program time.

use std::sync::atomic::{AtomicI32, Ordering::Relaxed};

use libc::{c_int, c_uint, clockid_t, epoll_event, fd_set, itimerspec, itimerval, nfds_t, pollfd, sigset_t, timespec, timeval};

use crate::real::{real_fn, resolve_optional};
use crate::warp::{deadline_ts, lengthen, ns_ts, scale, shorten, shorten_ts, ts_ns, warp_of};

fn tv_ns(tv: &timeval) -> i64 {
    tv.tv_sec.saturating_mul(1_000_000_000).saturating_add(tv.tv_usec * 1000)
}

fn ns_tv(ns: i64) -> timeval {
    timeval { tv_sec: ns.div_euclid(1_000_000_000) as libc::time_t, tv_usec: (ns.rem_euclid(1_000_000_000) / 1000) as libc::suseconds_t }
}

/// A relative timeout in microseconds, shortened and rounded up to the microsecond.
fn shorten_tv(k: f64, tv: &timeval) -> timeval {
    let ns = shorten(k, tv_ns(tv));
    ns_tv(if ns > 0 { ns.saturating_add(999) / 1000 * 1000 } else { ns })
}

type Nanosleep = unsafe extern "C" fn(*const timespec, *mut timespec) -> c_int;

/// `nanosleep(2)`: sleeps `req / k`; the time left after a signal is reported in program time.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    let f = real_fn!(nanosleep: Nanosleep);
    let Some(k) = scale().filter(|_| !req.is_null()) else {
        // SAFETY: the caller's arguments, passed on as given.
        return unsafe { f(req, rem) };
    };
    // SAFETY: `req` is not null and, per the contract, a valid timespec.
    let short = shorten_ts(k, unsafe { &*req });
    // SAFETY: `short` is a local timespec; `rem` as given.
    let r = unsafe { f(&short, rem) };
    if r != 0 && !rem.is_null() {
        // SAFETY: interrupted: the kernel wrote the real time left to `rem`.
        unsafe { *rem = ns_ts(lengthen(k, ts_ns(&*rem))) };
    }
    r
}

/// `clock_nanosleep(2)`: a relative sleep lasts `req / k`; an absolute one on a warped clock
/// ends at the real instant of the program deadline.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn clock_nanosleep(c: clockid_t, flags: c_int, req: *const timespec, rem: *mut timespec) -> c_int {
    type F = unsafe extern "C" fn(clockid_t, c_int, *const timespec, *mut timespec) -> c_int;
    let f = real_fn!(clock_nanosleep: F);
    let Some((k, _)) = warp_of(c).filter(|_| !req.is_null()) else {
        // SAFETY: the caller's arguments, passed on as given.
        return unsafe { f(c, flags, req, rem) };
    };
    // SAFETY: `req` is not null and, per the contract, a valid timespec.
    let req = unsafe { &*req };
    if flags & libc::TIMER_ABSTIME != 0 {
        let real_deadline = deadline_ts(c, req);
        // SAFETY: a local timespec; `rem` is unused for absolute sleeps.
        return unsafe { f(c, flags, &real_deadline, rem) };
    }
    let short = shorten_ts(k, req);
    // SAFETY: a local timespec; `rem` as given.
    let r = unsafe { f(c, flags, &short, rem) };
    if r == libc::EINTR && !rem.is_null() {
        // SAFETY: interrupted: the kernel wrote the real time left to `rem`.
        unsafe { *rem = ns_ts(lengthen(k, ts_ns(&*rem))) };
    }
    r
}

/// `usleep(3)`.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn usleep(us: libc::useconds_t) -> c_int {
    let req = ns_ts(i64::from(us) * 1000);
    // SAFETY: a local timespec; no time left is asked for.
    unsafe { nanosleep(&req, std::ptr::null_mut()) }
}

/// `sleep(3)`: returns the program seconds left when a signal ends it early.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    let req = ns_ts(i64::from(secs) * 1_000_000_000);
    let mut rem = timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: local timespecs.
    if unsafe { nanosleep(&req, &mut rem) } == 0 {
        0
    } else {
        (rem.tv_sec as c_uint) + c_uint::from(rem.tv_nsec > 0)
    }
}

type Ppoll = unsafe extern "C" fn(*mut pollfd, nfds_t, *const timespec, *const sigset_t) -> c_int;

/// `poll(2)`: a positive timeout becomes a `ppoll` of timeout / k (nanoseconds, so that a
/// millisecond at 10x is not rounded to a busy loop).
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout_ms: c_int) -> c_int {
    match scale() {
        Some(k) if timeout_ms > 0 => {
            let ts = ns_ts(shorten(k, i64::from(timeout_ms) * 1_000_000));
            let f = real_fn!(ppoll: Ppoll);
            // SAFETY: the caller's descriptors; a local timespec; no signal mask.
            unsafe { f(fds, n, &ts, std::ptr::null()) }
        }
        _ => {
            type F = unsafe extern "C" fn(*mut pollfd, nfds_t, c_int) -> c_int;
            let f = real_fn!(poll: F);
            // SAFETY: the caller's arguments, passed on as given.
            unsafe { f(fds, n, timeout_ms) }
        }
    }
}

/// `ppoll(2)`.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn ppoll(fds: *mut pollfd, n: nfds_t, ts: *const timespec, mask: *const sigset_t) -> c_int {
    let f = real_fn!(ppoll: Ppoll);
    match scale().filter(|_| !ts.is_null()) {
        Some(k) => {
            // SAFETY: `ts` is not null and, per the contract, a valid timespec.
            let short = shorten_ts(k, unsafe { &*ts });
            // SAFETY: the caller's descriptors and mask; a local timespec.
            unsafe { f(fds, n, &short, mask) }
        }
        // SAFETY: the caller's arguments, passed on as given.
        None => unsafe { f(fds, n, ts, mask) },
    }
}

/// `select(2)`: Linux writes the time left back to `tv`; it is written in program time.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn select(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, tv: *mut timeval) -> c_int {
    type F = unsafe extern "C" fn(c_int, *mut fd_set, *mut fd_set, *mut fd_set, *mut timeval) -> c_int;
    let f = real_fn!(select: F);
    let Some(k) = scale().filter(|_| !tv.is_null()) else {
        // SAFETY: the caller's arguments, passed on as given.
        return unsafe { f(n, r, w, e, tv) };
    };
    // SAFETY: `tv` is not null and, per the contract, a valid, writable timeval.
    let tv = unsafe { &mut *tv };
    let mut short = shorten_tv(k, tv);
    // SAFETY: the caller's sets; a local timeval.
    let res = unsafe { f(n, r, w, e, &mut short) };
    *tv = ns_tv(lengthen(k, tv_ns(&short)));
    res
}

/// `pselect(2)`.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn pselect(n: c_int, r: *mut fd_set, w: *mut fd_set, e: *mut fd_set, ts: *const timespec, mask: *const sigset_t) -> c_int {
    type F = unsafe extern "C" fn(c_int, *mut fd_set, *mut fd_set, *mut fd_set, *const timespec, *const sigset_t) -> c_int;
    let f = real_fn!(pselect: F);
    match scale().filter(|_| !ts.is_null()) {
        Some(k) => {
            // SAFETY: `ts` is not null and, per the contract, a valid timespec.
            let short = shorten_ts(k, unsafe { &*ts });
            // SAFETY: the caller's sets and mask; a local timespec.
            unsafe { f(n, r, w, e, &short, mask) }
        }
        // SAFETY: the caller's arguments, passed on as given.
        None => unsafe { f(n, r, w, e, ts, mask) },
    }
}

type EpollPwait2 = unsafe extern "C" fn(c_int, *mut epoll_event, c_int, *const timespec, *const sigset_t) -> c_int;

/// Whether epoll_pwait2 (Linux 5.11) is missing: then timeouts are whole milliseconds.
static NO_PWAIT2: AtomicI32 = AtomicI32::new(0);

/// An epoll wait of `ms` program milliseconds: `epoll_pwait2` with timeout / k in nanoseconds,
/// or, on a kernel without it, `epoll_pwait` with timeout / k rounded up to a millisecond.
unsafe fn epoll_scaled(k: f64, ep: c_int, ev: *mut epoll_event, max: c_int, ms: c_int, mask: *const sigset_t) -> c_int {
    let ns = shorten(k, i64::from(ms) * 1_000_000);
    if NO_PWAIT2.load(Relaxed) == 0 {
        static PTR: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let f = resolve_optional(&PTR, "epoll_pwait2\0");
        if f != 0 {
            // SAFETY: the address dlsym gave for epoll_pwait2, of this C type.
            let f = unsafe { std::mem::transmute::<usize, EpollPwait2>(f) };
            let ts = ns_ts(ns);
            // SAFETY: the caller's descriptors, buffer and mask; a local timespec.
            let r = unsafe { f(ep, ev, max, &ts, mask) };
            // SAFETY: reads this thread's errno.
            if r >= 0 || unsafe { *libc::__errno_location() } != libc::ENOSYS {
                return r;
            }
        }
        NO_PWAIT2.store(1, Relaxed);
    }
    type F = unsafe extern "C" fn(c_int, *mut epoll_event, c_int, c_int, *const sigset_t) -> c_int;
    let f = real_fn!(epoll_pwait: F);
    let ms = (ns.saturating_add(999_999) / 1_000_000).min(i64::from(c_int::MAX)) as c_int;
    // SAFETY: the caller's descriptors, buffer and mask.
    unsafe { f(ep, ev, max, ms, mask) }
}

/// `epoll_wait(2)`.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn epoll_wait(ep: c_int, ev: *mut epoll_event, max: c_int, ms: c_int) -> c_int {
    match scale() {
        // SAFETY: the caller's arguments; no signal mask.
        Some(k) if ms > 0 => unsafe { epoll_scaled(k, ep, ev, max, ms, std::ptr::null()) },
        _ => {
            type F = unsafe extern "C" fn(c_int, *mut epoll_event, c_int, c_int) -> c_int;
            let f = real_fn!(epoll_wait: F);
            // SAFETY: the caller's arguments, passed on as given.
            unsafe { f(ep, ev, max, ms) }
        }
    }
}

/// `epoll_pwait(2)`.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn epoll_pwait(ep: c_int, ev: *mut epoll_event, max: c_int, ms: c_int, mask: *const sigset_t) -> c_int {
    match scale() {
        // SAFETY: the caller's arguments.
        Some(k) if ms > 0 => unsafe { epoll_scaled(k, ep, ev, max, ms, mask) },
        _ => {
            type F = unsafe extern "C" fn(c_int, *mut epoll_event, c_int, c_int, *const sigset_t) -> c_int;
            let f = real_fn!(epoll_pwait: F);
            // SAFETY: the caller's arguments, passed on as given.
            unsafe { f(ep, ev, max, ms, mask) }
        }
    }
}

/// `epoll_pwait2(2)`.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn epoll_pwait2(ep: c_int, ev: *mut epoll_event, max: c_int, ts: *const timespec, mask: *const sigset_t) -> c_int {
    let f = real_fn!(epoll_pwait2: EpollPwait2);
    match scale().filter(|_| !ts.is_null()) {
        Some(k) => {
            // SAFETY: `ts` is not null and, per the contract, a valid timespec.
            let short = shorten_ts(k, unsafe { &*ts });
            // SAFETY: the caller's descriptors, buffer and mask; a local timespec.
            unsafe { f(ep, ev, max, &short, mask) }
        }
        // SAFETY: the caller's arguments, passed on as given.
        None => unsafe { f(ep, ev, max, ts, mask) },
    }
}

/// The clock of each timerfd, by descriptor (the first 4096; -1: not a timerfd we saw made).
static TIMERFD_CLOCK: [AtomicI32; 4096] = [const { AtomicI32::new(-1) }; 4096];

fn timerfd_clock(fd: c_int) -> clockid_t {
    // A timerfd beyond the table: CLOCK_MONOTONIC, what nearly every program asks for.
    usize::try_from(fd).ok().and_then(|i| TIMERFD_CLOCK.get(i)).map(|c| c.load(Relaxed)).filter(|c| *c >= 0).unwrap_or(libc::CLOCK_MONOTONIC)
}

/// `timerfd_create(2)`: remembers the descriptor's clock, for absolute deadlines.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn timerfd_create(c: clockid_t, flags: c_int) -> c_int {
    type F = unsafe extern "C" fn(clockid_t, c_int) -> c_int;
    let f = real_fn!(timerfd_create: F);
    // SAFETY: plain integers.
    let fd = unsafe { f(c, flags) };
    if let Some(slot) = usize::try_from(fd).ok().and_then(|i| TIMERFD_CLOCK.get(i)) {
        slot.store(c, Relaxed);
    }
    fd
}

fn lengthen_its(k: f64, its: &mut itimerspec) {
    its.it_value = ns_ts(lengthen(k, ts_ns(&its.it_value)));
    its.it_interval = ns_ts(lengthen(k, ts_ns(&its.it_interval)));
}

/// `timerfd_settime(2)`.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn timerfd_settime(fd: c_int, flags: c_int, new: *const itimerspec, old: *mut itimerspec) -> c_int {
    type F = unsafe extern "C" fn(c_int, c_int, *const itimerspec, *mut itimerspec) -> c_int;
    let f = real_fn!(timerfd_settime: F);
    let c = timerfd_clock(fd);
    let Some((k, _)) = warp_of(c).filter(|_| !new.is_null()) else {
        // SAFETY: the caller's arguments, passed on as given.
        return unsafe { f(fd, flags, new, old) };
    };
    // SAFETY: `new` is not null and, per the contract, a valid itimerspec.
    let mut its = unsafe { *new };
    let armed = ts_ns(&its.it_value) != 0;
    if armed {
        its.it_value = if flags & libc::TFD_TIMER_ABSTIME != 0 { deadline_ts(c, &its.it_value) } else { shorten_ts(k, &its.it_value) };
        if ts_ns(&its.it_value) == 0 {
            its.it_value.tv_nsec = 1; // still armed: 0 would disarm it
        }
    }
    its.it_interval = shorten_ts(k, &its.it_interval);
    // SAFETY: a local itimerspec; `old` as given.
    let r = unsafe { f(fd, flags, &its, old) };
    if r == 0 && !old.is_null() {
        // SAFETY: the call succeeded and wrote `old`.
        lengthen_its(k, unsafe { &mut *old });
    }
    r
}

/// `timerfd_gettime(2)`: the time left and the interval, in program time.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn timerfd_gettime(fd: c_int, cur: *mut itimerspec) -> c_int {
    type F = unsafe extern "C" fn(c_int, *mut itimerspec) -> c_int;
    let f = real_fn!(timerfd_gettime: F);
    // SAFETY: the caller's arguments, passed on as given.
    let r = unsafe { f(fd, cur) };
    if let (0, Some((k, _)), false) = (r, warp_of(timerfd_clock(fd)), cur.is_null()) {
        // SAFETY: the call succeeded and wrote `cur`.
        lengthen_its(k, unsafe { &mut *cur });
    }
    r
}

fn lengthen_itv(k: f64, itv: &mut itimerval) {
    itv.it_value = ns_tv(lengthen(k, tv_ns(&itv.it_value)));
    itv.it_interval = ns_tv(lengthen(k, tv_ns(&itv.it_interval)));
}

/// `setitimer(2)`: `ITIMER_REAL` runs on the warped clock; the CPU-time timers do not.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn setitimer(which: c_int, new: *const itimerval, old: *mut itimerval) -> c_int {
    type F = unsafe extern "C" fn(c_int, *const itimerval, *mut itimerval) -> c_int;
    let f = real_fn!(setitimer: F);
    let Some(k) = scale().filter(|_| which == libc::ITIMER_REAL && !new.is_null()) else {
        // SAFETY: the caller's arguments, passed on as given.
        return unsafe { f(which, new, old) };
    };
    // SAFETY: `new` is not null and, per the contract, a valid itimerval.
    let mut itv = unsafe { *new };
    itv.it_value = shorten_tv(k, &itv.it_value);
    itv.it_interval = shorten_tv(k, &itv.it_interval);
    // SAFETY: a local itimerval; `old` as given.
    let r = unsafe { f(which, &itv, old) };
    if r == 0 && !old.is_null() {
        // SAFETY: the call succeeded and wrote `old`.
        lengthen_itv(k, unsafe { &mut *old });
    }
    r
}

/// `getitimer(2)`.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn getitimer(which: c_int, cur: *mut itimerval) -> c_int {
    type F = unsafe extern "C" fn(c_int, *mut itimerval) -> c_int;
    let f = real_fn!(getitimer: F);
    // SAFETY: the caller's arguments, passed on as given.
    let r = unsafe { f(which, cur) };
    if let (0, Some(k), true, false) = (r, scale(), which == libc::ITIMER_REAL, cur.is_null()) {
        // SAFETY: the call succeeded and wrote `cur`.
        lengthen_itv(k, unsafe { &mut *cur });
    }
    r
}

/// `alarm(2)`: a SIGALRM after `secs` program seconds; returns the program seconds the previous
/// alarm had left (rounded up, as the kernel does).
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn alarm(secs: c_uint) -> c_uint {
    if scale().is_none() {
        type F = unsafe extern "C" fn(c_uint) -> c_uint;
        let f = real_fn!(alarm: F);
        // SAFETY: a plain integer.
        return unsafe { f(secs) };
    }
    let new = itimerval { it_interval: ns_tv(0), it_value: ns_tv(i64::from(secs) * 1_000_000_000) };
    let mut old = itimerval { it_interval: ns_tv(0), it_value: ns_tv(0) };
    // SAFETY: local itimervals.
    if unsafe { setitimer(libc::ITIMER_REAL, &new, &mut old) } != 0 {
        return 0;
    }
    let left = tv_ns(&old.it_value);
    (left.saturating_add(999_999_999) / 1_000_000_000).min(i64::from(c_uint::MAX)) as c_uint
}
