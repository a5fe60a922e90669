//! Waits with a deadline on another thread: condition variables, semaphores, timed locks and
//! joins, and `futex` through `syscall()`. Their deadlines are absolute, on a clock each call
//! names or implies; on a warped clock the deadline becomes the real instant of that program
//! time.

use libc::{c_int, c_long, c_void, clockid_t, pthread_cond_t, pthread_mutex_t, pthread_rwlock_t, pthread_t, sem_t, timespec};

use crate::condvar::clock_of;
use crate::real::real_fn;
use crate::warp::{deadline_ts, scale, shorten_ts};

/// The real deadline for the caller's `abstime` on clock `c` (null stays null).
fn real_deadline(c: clockid_t, abstime: *const timespec, buf: &mut timespec) -> *const timespec {
    if abstime.is_null() || scale().is_none() {
        return abstime;
    }
    // SAFETY: not null and, per the C function's contract, a valid timespec.
    *buf = deadline_ts(c, unsafe { &*abstime });
    buf
}

macro_rules! with_deadline {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*; $clock:expr, $abs:ident) -> $ret:ty) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// As the C function.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty,)* $abs: *const timespec) -> $ret {
            type F = unsafe extern "C" fn($($ty,)* *const timespec) -> $ret;
            let f = real_fn!($name: F);
            let mut buf = timespec { tv_sec: 0, tv_nsec: 0 };
            let d = real_deadline($clock, $abs, &mut buf);
            // SAFETY: the caller's arguments, with the deadline converted into a local.
            unsafe { f($($arg,)* d) }
        }
    };
}

with_deadline!(
    /// `pthread_cond_timedwait(3)`, on the condition variable's own clock.
    fn pthread_cond_timedwait(cond: *mut pthread_cond_t, m: *mut pthread_mutex_t; clock_of(cond), abstime) -> c_int);
with_deadline!(
    /// `pthread_cond_clockwait(3)`.
    fn pthread_cond_clockwait(cond: *mut pthread_cond_t, m: *mut pthread_mutex_t, c: clockid_t; c, abstime) -> c_int);
with_deadline!(
    /// `sem_timedwait(3)` (CLOCK_REALTIME).
    fn sem_timedwait(sem: *mut sem_t; libc::CLOCK_REALTIME, abstime) -> c_int);
with_deadline!(
    /// `sem_clockwait(3)`.
    fn sem_clockwait(sem: *mut sem_t, c: clockid_t; c, abstime) -> c_int);
with_deadline!(
    /// `pthread_mutex_timedlock(3)` (CLOCK_REALTIME).
    fn pthread_mutex_timedlock(m: *mut pthread_mutex_t; libc::CLOCK_REALTIME, abstime) -> c_int);
with_deadline!(
    /// `pthread_mutex_clocklock(3)`.
    fn pthread_mutex_clocklock(m: *mut pthread_mutex_t, c: clockid_t; c, abstime) -> c_int);
with_deadline!(
    /// `pthread_rwlock_timedrdlock(3)` (CLOCK_REALTIME).
    fn pthread_rwlock_timedrdlock(l: *mut pthread_rwlock_t; libc::CLOCK_REALTIME, abstime) -> c_int);
with_deadline!(
    /// `pthread_rwlock_timedwrlock(3)` (CLOCK_REALTIME).
    fn pthread_rwlock_timedwrlock(l: *mut pthread_rwlock_t; libc::CLOCK_REALTIME, abstime) -> c_int);
with_deadline!(
    /// `pthread_rwlock_clockrdlock(3)`.
    fn pthread_rwlock_clockrdlock(l: *mut pthread_rwlock_t, c: clockid_t; c, abstime) -> c_int);
with_deadline!(
    /// `pthread_rwlock_clockwrlock(3)`.
    fn pthread_rwlock_clockwrlock(l: *mut pthread_rwlock_t, c: clockid_t; c, abstime) -> c_int);
with_deadline!(
    /// `pthread_timedjoin_np(3)` (CLOCK_REALTIME).
    fn pthread_timedjoin_np(t: pthread_t, ret: *mut *mut c_void; libc::CLOCK_REALTIME, abstime) -> c_int);
with_deadline!(
    /// `pthread_clockjoin_np(3)`.
    fn pthread_clockjoin_np(t: pthread_t, ret: *mut *mut c_void, c: clockid_t; c, abstime) -> c_int);

const FUTEX_WAIT: c_int = 0;
const FUTEX_LOCK_PI: c_int = 6;
const FUTEX_WAIT_BITSET: c_int = 9;
const FUTEX_WAIT_REQUEUE_PI: c_int = 11;
const FUTEX_LOCK_PI2: c_int = 13;
const FUTEX_PRIVATE_FLAG: c_int = 128;
const FUTEX_CLOCK_REALTIME: c_int = 256;

type Syscall = unsafe extern "C" fn(c_long, ...) -> c_long;

/// `syscall(2)`: `futex` waits (and `futex_waitv`) get their timeouts converted, the clock and
/// sleep calls go to the functions above; every other call is passed on untouched. The C
/// function is variadic; on x86_64 and aarch64 Linux its integer arguments arrive exactly as
/// these six do, and the kernel ignores the ones a call does not use.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn syscall(n: c_long, a1: c_long, a2: c_long, a3: c_long, a4: c_long, a5: c_long, a6: c_long) -> c_long {
    let f = real_fn!(syscall: Syscall);
    let Some(k) = scale() else {
        // SAFETY: the caller's call, passed on as given.
        return unsafe { f(n, a1, a2, a3, a4, a5, a6) };
    };
    let mut buf = timespec { tv_sec: 0, tv_nsec: 0 };
    match n {
        libc::SYS_futex if a4 != 0 => {
            let op = a2 as c_int;
            let cmd = op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
            let clock = if op & FUTEX_CLOCK_REALTIME != 0 { libc::CLOCK_REALTIME } else { libc::CLOCK_MONOTONIC };
            let t = a4 as *const timespec;
            let t2 = match cmd {
                FUTEX_WAIT => {
                    // SAFETY: FUTEX_WAIT's fourth argument is a relative timespec, not null here.
                    buf = shorten_ts(k, unsafe { &*t });
                    &raw const buf
                }
                FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2 => real_deadline(clock, t, &mut buf),
                FUTEX_LOCK_PI => real_deadline(libc::CLOCK_REALTIME, t, &mut buf),
                _ => t, // the fourth argument is no timeout (val2 of a requeue or wake-op)
            };
            // SAFETY: the caller's call with its timeout converted into a local.
            unsafe { f(n, a1, a2, a3, t2 as c_long, a5, a6) }
        }
        libc::SYS_futex_waitv if a4 != 0 => {
            let t2 = real_deadline(a5 as clockid_t, a4 as *const timespec, &mut buf);
            // SAFETY: as above.
            unsafe { f(n, a1, a2, a3, t2 as c_long, a5, a6) }
        }
        // SAFETY: the arguments of these calls are those of the functions.
        libc::SYS_clock_gettime => c_long::from(unsafe { crate::clocks::clock_gettime(a1 as clockid_t, a2 as *mut timespec) }),
        libc::SYS_gettimeofday => c_long::from(unsafe { crate::clocks::gettimeofday(a1 as *mut libc::timeval, a2 as *mut c_void) }),
        libc::SYS_nanosleep => c_long::from(unsafe { crate::waits::nanosleep(a1 as *const timespec, a2 as *mut timespec) }),
        libc::SYS_clock_nanosleep => {
            // SAFETY: as above.
            let r = unsafe { crate::waits::clock_nanosleep(a1 as clockid_t, a2 as c_int, a3 as *const timespec, a4 as *mut timespec) };
            if r == 0 {
                0
            } else {
                // SAFETY: this thread's errno: syscall() reports errors through it.
                unsafe { *libc::__errno_location() = r };
                -1
            }
        }
        // SAFETY: the caller's call, passed on as given.
        _ => unsafe { f(n, a1, a2, a3, a4, a5, a6) },
    }
}
