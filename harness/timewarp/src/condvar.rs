//! The clock of a glibc condition variable, which `pthread_cond_timedwait` does not name.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering::Relaxed};

use libc::{clockid_t, pthread_cond_t};

/// Byte offset in `pthread_cond_t` of the word whose bit 1 is the condition variable's clock
/// (glibc's `__wrefs`), found by experiment at start-up; -1 when it could not be found.
pub(crate) static CLOCK_WORD: AtomicI32 = AtomicI32::new(-1);

/// The byte offset in `pthread_cond_t` of the word whose bit 1 is the variable's clock, found
/// by making one condition variable on each clock and comparing them (glibc >= 2.25 keeps it
/// in `__wrefs`, bit 1: 0 for CLOCK_REALTIME, 1 for CLOCK_MONOTONIC); -1 when they do not
/// differ in exactly that bit of one word.
pub(crate) fn find_clock_word() -> i32 {
    const WORDS: usize = std::mem::size_of::<pthread_cond_t>() / 4;
    let mut words = [[0u32; WORDS]; 2];
    for (i, clock) in [libc::CLOCK_REALTIME, libc::CLOCK_MONOTONIC].into_iter().enumerate() {
        // SAFETY: a condition variable and its attributes made, read as bytes and destroyed
        // here; zeroed memory is a valid initial state for both before their init calls.
        unsafe {
            let mut attr: libc::pthread_condattr_t = std::mem::zeroed();
            let mut cond: pthread_cond_t = std::mem::zeroed();
            libc::pthread_condattr_init(&mut attr);
            libc::pthread_condattr_setclock(&mut attr, clock);
            libc::pthread_cond_init(&mut cond, &attr);
            std::ptr::copy_nonoverlapping((&raw const cond).cast::<u32>(), words[i].as_mut_ptr(), WORDS);
            libc::pthread_cond_destroy(&mut cond);
            libc::pthread_condattr_destroy(&mut attr);
        }
    }
    // No allocation: this runs while the warp is read, inside the C library's start-up.
    let mut differ = (0..WORDS).filter(|w| words[0][*w] != words[1][*w]);
    match (differ.next(), differ.next()) {
        (Some(w), None) if words[0][w] ^ words[1][w] == 2 && words[1][w] & 2 != 0 => (w * 4) as i32,
        _ => -1,
    }
}

/// The clock a condition variable's deadlines are on.
pub(crate) fn clock_of(cond: *const pthread_cond_t) -> clockid_t {
    let off = CLOCK_WORD.load(Relaxed);
    if off < 0 || cond.is_null() {
        return libc::CLOCK_REALTIME; // POSIX's default
    }
    // SAFETY: `cond` is the caller's initialised condition variable and `off` a word inside it
    // (found within size_of::<pthread_cond_t>()); other threads change that word atomically, so
    // it is read atomically.
    let word = unsafe { &*(cond.cast::<u8>().add(off as usize).cast::<AtomicU32>()) };
    if word.load(Relaxed) & 2 != 0 {
        libc::CLOCK_MONOTONIC
    } else {
        libc::CLOCK_REALTIME
    }
}
