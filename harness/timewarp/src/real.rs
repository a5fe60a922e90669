//! The C library's own definitions of the functions this library replaces, found with
//! `dlsym(RTLD_NEXT)` once each.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use libc::{c_char, c_int, clockid_t, timespec};

/// Looks up the C library's own `name` once (`dlsym(RTLD_NEXT)`) and caches it.
macro_rules! real_fn {
    ($name:ident: $ty:ty) => {{
        static PTR: ::std::sync::atomic::AtomicUsize = ::std::sync::atomic::AtomicUsize::new(0);
        let f = $crate::real::resolve(&PTR, concat!(stringify!($name), "\0"));
        // SAFETY: `f` is the address dlsym returned for this very symbol of the C library,
        // whose C type is `$ty`; resolve() never returns 0 (it aborts instead).
        unsafe { ::std::mem::transmute::<usize, $ty>(f) }
    }};
}
pub(crate) use real_fn;

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

type ClockGettime = unsafe extern "C" fn(clockid_t, *mut timespec) -> c_int;

/// The C library's `clock_gettime` (the vDSO's fast path), unwarped.
pub(crate) fn real_clock_gettime(c: clockid_t, ts: &mut timespec) -> c_int {
    let f = real_fn!(clock_gettime: ClockGettime);
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { f(c, ts) }
}
