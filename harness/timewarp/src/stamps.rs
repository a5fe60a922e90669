//! Kernel time stamps of received packets: `SO_TIMESTAMP`, `SO_TIMESTAMPNS` and the software
//! stamp of `SO_TIMESTAMPING` (old and new forms), delivered in `recvmsg`/`recvmmsg` control
//! messages. The kernel writes real `CLOCK_REALTIME`; a warped program compares them with its
//! own clock, program time, so they are converted the same way. PowerDNS Recursor stamps every
//! query so and drops one that waited longer than its network timeout: unconverted, at 10x, a
//! query a second into the warp looked 9 s old, and none was ever answered.

use libc::{c_int, c_uint, mmsghdr, msghdr, ssize_t, timespec, timeval};

use crate::real::real_fn;
use crate::warp::{ns_ts, shorten_ts, to_program, ts_ns, warp_of};

/// `SO_TIMESTAMP_NEW`, `SO_TIMESTAMPNS_NEW`, `SO_TIMESTAMPING_NEW` (asm-generic; the same on
/// x86_64 and aarch64): on 64-bit Linux their payloads have the old forms' layout.
const SO_TIMESTAMP_NEW: c_int = 63;
const SO_TIMESTAMPNS_NEW: c_int = 64;
const SO_TIMESTAMPING_NEW: c_int = 65;

/// `recvmsg(2)`, its time stamps in program time.
///
/// # Safety
/// As the C function: `msg` is null (EFAULT) or a valid `msghdr` whose buffers are writable.
#[no_mangle]
pub unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    type F = unsafe extern "C" fn(c_int, *mut msghdr, c_int) -> ssize_t;
    let f = real_fn!(recvmsg: F);
    // SAFETY: the caller's arguments, passed on as given.
    let r = unsafe { f(fd, msg, flags) };
    if r >= 0 && !msg.is_null() {
        // SAFETY: the call succeeded, so `msg` is valid and its control data was written.
        unsafe { convert(msg) };
    }
    r
}

/// `recvmmsg(2)`: its time stamps in program time, and its timeout (relative, program time)
/// shortened like every timed wait.
///
/// # Safety
/// As the C function.
#[no_mangle]
pub unsafe extern "C" fn recvmmsg(fd: c_int, msgvec: *mut mmsghdr, vlen: c_uint, flags: c_int, timeout: *mut timespec) -> c_int {
    type F = unsafe extern "C" fn(c_int, *mut mmsghdr, c_uint, c_int, *mut timespec) -> c_int;
    let f = real_fn!(recvmmsg: F);
    let mut real = None;
    let timeout = match crate::warp::scale() {
        // SAFETY: a non-null timeout is the caller's valid timespec.
        Some(k) if !timeout.is_null() => std::ptr::from_mut(real.insert(shorten_ts(k, unsafe { &*timeout }))),
        _ => timeout,
    };
    // SAFETY: the caller's arguments, the timeout replaced by a valid local one.
    let r = unsafe { f(fd, msgvec, vlen, flags, timeout) };
    if r > 0 && !msgvec.is_null() {
        for i in 0..r as usize {
            // SAFETY: the kernel filled the first `r` entries of the caller's array.
            unsafe { convert(&raw mut (*msgvec.add(i)).msg_hdr) };
        }
    }
    r
}

/// Converts the time stamps in `msg`'s control messages to program time.
///
/// # Safety
/// `msg` is a valid `msghdr` the kernel has just filled.
unsafe fn convert(msg: *mut msghdr) {
    let Some((k, o)) = warp_of(libc::CLOCK_REALTIME) else { return };
    // SAFETY: `msg` is valid (the caller's contract).
    if unsafe { (*msg).msg_control.is_null() || (*msg).msg_controllen == 0 } {
        return;
    }
    let program = |ns: i64| if ns == 0 { 0 } else { to_program(k, o, ns) };
    // SAFETY: the CMSG macros walk the control buffer the kernel filled, within msg_controllen.
    let mut c = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !c.is_null() {
        // SAFETY: `c` is a header inside the buffer (CMSG_FIRSTHDR/CMSG_NXTHDR checked it).
        let (level, kind, len) = unsafe { ((*c).cmsg_level, (*c).cmsg_type, (*c).cmsg_len as usize) };
        if level == libc::SOL_SOCKET {
            // SAFETY: as above; the payload's length is checked against each form before use.
            let data = unsafe { libc::CMSG_DATA(c) };
            let room = len.saturating_sub(data as usize - c as usize);
            match kind {
                libc::SO_TIMESTAMP | SO_TIMESTAMP_NEW if room >= size_of::<timeval>() => {
                    // SAFETY: a timeval fits in the payload; control data need not be aligned.
                    unsafe {
                        let p = data.cast::<timeval>();
                        let mut tv = p.read_unaligned();
                        let ns = program(tv.tv_sec.saturating_mul(1_000_000_000).saturating_add(tv.tv_usec * 1000));
                        tv.tv_sec = ns.div_euclid(1_000_000_000) as libc::time_t;
                        tv.tv_usec = (ns.rem_euclid(1_000_000_000) / 1000) as libc::suseconds_t;
                        p.write_unaligned(tv);
                    }
                }
                libc::SO_TIMESTAMPNS | SO_TIMESTAMPNS_NEW if room >= size_of::<timespec>() => {
                    // SAFETY: a timespec fits in the payload.
                    unsafe { convert_ts(data.cast::<timespec>(), program) };
                }
                // Three stamps: software, (deprecated), hardware. Only the first is the system
                // clock's; a hardware stamp is the NIC's clock, left alone.
                libc::SO_TIMESTAMPING | SO_TIMESTAMPING_NEW if room >= size_of::<timespec>() => {
                    // SAFETY: the first timespec fits in the payload.
                    unsafe { convert_ts(data.cast::<timespec>(), program) };
                }
                _ => {}
            }
        }
        // SAFETY: as above.
        c = unsafe { libc::CMSG_NXTHDR(msg, c) };
    }
}

/// Rewrites the (possibly unaligned) timespec at `p` with `program` of its value.
///
/// # Safety
/// `p` points to a readable and writable timespec.
unsafe fn convert_ts(p: *mut timespec, program: impl Fn(i64) -> i64) {
    // SAFETY: the caller's contract.
    unsafe {
        let ts = p.read_unaligned();
        p.write_unaligned(ns_ts(program(ts_ns(&ts))));
    }
}
