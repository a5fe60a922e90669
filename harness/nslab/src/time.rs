//! Time warp: programs under test run k times faster than real time, and the harness converts
//! its real observations into their (program) time.
//!
//! A [`TimeWarp`] has a scale k >= 1 and an origin O: the real `CLOCK_MONOTONIC` m0 and
//! `CLOCK_REALTIME` w0 read together when it is made. Program time of a real instant t is
//! `O + (t - O) * k` on both clocks; a timed wait of a warped program (sleep, condition wait,
//! poll timeout, timerfd, futex) lasts its duration / k of real time. A [`crate::Command`] given
//! [`crate::Command::time_warp`] runs with nslab's preload library (`libnslab_timewarp.so`,
//! the `nslab-timewarp` crate) in `LD_PRELOAD`, which makes its clocks and timed waits follow
//! that formula; ARCHITECTURE.md ("Time warp") has the measurements behind this choice and the
//! classes of program and kernel timer it cannot reach.
//!
//! ```
//! use std::time::Duration;
//! let warp = nslab::TimeWarp::new(10.0)?;
//! assert_eq!(warp.to_program(Duration::from_secs(3)), Duration::from_secs(30));
//! assert_eq!(warp.to_real(Duration::from_secs(30)), Duration::from_secs(3));
//! # Ok::<(), nslab::Error>(())
//! ```

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use nix::time::{clock_gettime, ClockId};

use crate::error::{Error, Result};

/// The environment variable that carries a warp to the preload library: `SCALE MONO_NS REAL_NS`
/// (the scale as a decimal number, then the origin on `CLOCK_MONOTONIC` and `CLOCK_REALTIME` in
/// nanoseconds).
pub const ENV: &str = "NSLAB_TIMEWARP";

/// The environment variable that names the preload library explicitly (overrides the search).
pub const LIB_ENV: &str = "NSLAB_TIMEWARP_LIB";

/// File name of the preload library (the `nslab-timewarp` crate's cdylib).
pub const LIB_NAME: &str = "libnslab_timewarp.so";

/// Largest scale accepted: at 1000x one real millisecond is a program second, below which the
/// machine's own scheduling noise (tens of microseconds) becomes program-visible milliseconds.
pub const MAX_SCALE: f64 = 1000.0;

/// Where the preload library is placed inside a host (in the host's own `/run`).
const IN_HOST_DIR: &str = "/run/nslab-timewarp";

/// A time scale and its origin: the conversion between real time and a warped program's time.
/// Cheap to clone; every clone shares the origin.
#[derive(Clone, Debug)]
pub struct TimeWarp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    scale: f64,
    /// The origin as an [`Instant`] (the harness's monotonic clock).
    origin: Instant,
    /// The origin on the real `CLOCK_MONOTONIC`, in nanoseconds.
    mono_ns: i128,
    /// The origin on the real `CLOCK_REALTIME`.
    wall: SystemTime,
    /// The origin on the real `CLOCK_REALTIME`, in nanoseconds since the epoch.
    wall_ns: i128,
}

fn now_ns(clock: ClockId) -> i128 {
    // CLOCK_MONOTONIC and CLOCK_REALTIME cannot fail to be read on Linux (clock_gettime(2)
    // fails only for an unknown clock or a bad pointer).
    let t = clock_gettime(clock).expect("clock_gettime of CLOCK_MONOTONIC/CLOCK_REALTIME");
    i128::from(t.tv_sec()) * 1_000_000_000 + i128::from(t.tv_nsec())
}

impl TimeWarp {
    /// A warp of `scale` (program seconds per real second) whose origin is now.
    ///
    /// # Errors
    /// [`Error::TimeScale`] when `scale` is not finite, below 1 or above [`MAX_SCALE`].
    pub fn new(scale: f64) -> Result<TimeWarp> {
        if !scale.is_finite() || !(1.0..=MAX_SCALE).contains(&scale) {
            return Err(Error::TimeScale { scale });
        }
        // Both clocks read as close together as the machine allows: the monotonic reading is
        // the midpoint of two around the wall-clock one.
        let origin = Instant::now();
        let m1 = now_ns(ClockId::CLOCK_MONOTONIC);
        let wall = SystemTime::now();
        let m2 = now_ns(ClockId::CLOCK_MONOTONIC);
        let wall_ns = wall.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos() as i128).unwrap_or(0);
        Ok(TimeWarp { inner: Arc::new(Inner { scale, origin, mono_ns: (m1 + m2) / 2, wall, wall_ns }) })
    }

    /// A warp of `scale` whose origin is `origin`, an instant already past (a lab's
    /// [`crate::Lab::epoch`], so that lab time zero is program time zero): the clocks' readings
    /// at that instant are today's minus the time since.
    ///
    /// # Errors
    /// As [`TimeWarp::new`].
    pub fn with_origin(scale: f64, origin: Instant) -> Result<TimeWarp> {
        let now = TimeWarp::new(scale)?;
        let back = now.inner.origin.saturating_duration_since(origin);
        let back_ns = back.as_nanos() as i128;
        let inner = Inner { scale, origin, mono_ns: now.inner.mono_ns - back_ns, wall: now.inner.wall - back, wall_ns: now.inner.wall_ns - back_ns };
        Ok(TimeWarp { inner: Arc::new(inner) })
    }

    /// Program seconds per real second (1 = real time).
    pub fn scale(&self) -> f64 {
        self.inner.scale
    }

    /// The program duration that `real_since_origin` of real time is: `* scale`.
    pub fn to_program(&self, real_since_origin: Duration) -> Duration {
        mul(real_since_origin, self.inner.scale)
    }

    /// The real duration that `program_since_origin` of program time is: `/ scale`.
    pub fn to_real(&self, program_since_origin: Duration) -> Duration {
        mul(program_since_origin, 1.0 / self.inner.scale)
    }

    /// Program time since the origin of a real `CLOCK_REALTIME` stamp (a log line's, a packet
    /// capture's); zero for a stamp before the origin.
    pub fn program_since_origin(&self, real: SystemTime) -> Duration {
        self.to_program(real.duration_since(self.inner.wall).unwrap_or(Duration::ZERO))
    }

    /// Program time since the origin of a real [`Instant`]; zero for one before the origin.
    pub fn program_at(&self, real: Instant) -> Duration {
        self.to_program(real.saturating_duration_since(self.inner.origin))
    }

    /// Program time since the origin of a lab-time stamp (a [`crate::Line::at`], a query log
    /// entry's time: real time since `lab_epoch`, [`crate::Lab::epoch`]).
    pub fn program_at_lab(&self, lab_epoch: Instant, at: Duration) -> Duration {
        self.program_at(lab_epoch + at)
    }

    /// Program time since the origin of a warped program's own `CLOCK_MONOTONIC` reading
    /// (`System.nanoTime()`, Python's `time.monotonic_ns()`, as a duration since boot); `None`
    /// for a reading before the origin (not a warped program's: a warped clock never reads
    /// less than the origin).
    pub fn program_monotonic(&self, reading: Duration) -> Option<Duration> {
        let ns = i128::try_from(reading.as_nanos()).ok()? - self.inner.mono_ns;
        u64::try_from(ns).ok().map(Duration::from_nanos)
    }

    /// Program time since the origin of a warped program's own `CLOCK_REALTIME` reading
    /// (`System.currentTimeMillis()`, Python's `time.time_ns()`, as a duration since the Unix
    /// epoch); `None` for a reading before the origin.
    pub fn program_realtime(&self, since_unix_epoch: Duration) -> Option<Duration> {
        let ns = i128::try_from(since_unix_epoch.as_nanos()).ok()? - self.inner.wall_ns;
        u64::try_from(ns).ok().map(Duration::from_nanos)
    }

    /// Program time since the origin, now.
    pub fn program_now(&self) -> Duration {
        self.program_at(Instant::now())
    }

    /// The origin, as an [`Instant`] of the harness.
    pub fn origin(&self) -> Instant {
        self.inner.origin
    }

    /// Sleeps `d` of program time (`d / scale` of real time, on tokio's timer).
    pub async fn sleep_program(&self, d: Duration) {
        tokio::time::sleep(self.to_real(d)).await
    }

    /// The value of [`ENV`] for this warp.
    pub fn env_value(&self) -> String {
        format!("{} {} {}", self.inner.scale, self.inner.mono_ns, self.inner.wall_ns)
    }

    /// Whether the program `program` (a path, or a name looked up in `PATH`) can run warped:
    /// the preload library reaches only dynamically linked programs that read the time and wait
    /// through the C library. `Err` says why not: a statically linked binary ignores
    /// `LD_PRELOAD`, and so does the loader for a set-user-ID or set-group-ID one; a Go binary
    /// reads its clocks from the vDSO and waits with raw system calls even when dynamically
    /// linked. A script is judged by its interpreter. Not detected: a program given file
    /// capabilities (`setcap`), for which the loader ignores `LD_PRELOAD` too.
    ///
    /// # Errors
    /// The reason, naming the program, when it cannot be warped or cannot be read.
    ///
    /// A verdict is remembered for the file as it is (device, inode, size, change time): the
    /// same program is checked once however many trials start it.
    pub fn check_program(program: impl AsRef<Path>) -> std::result::Result<(), String> {
        check_program(program.as_ref(), 0)
    }
}

fn mul(d: Duration, k: f64) -> Duration {
    // f64 carries 53 bits: exact to the nanosecond up to about 104 days of program time.
    Duration::from_nanos((d.as_nanos() as f64 * k).round().min(u64::MAX as f64) as u64)
}

fn which(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(program)).find(|c| c.is_file()))
}

/// A file as it is on disk: a verdict for it holds until it changes.
type FileKey = (u64, u64, u64, i64, i64);

/// The verdicts of [`check_program`], by the file checked.
static CHECKED: Mutex<Option<HashMap<FileKey, std::result::Result<(), String>>>> = Mutex::new(None);

fn check_program(program: &Path, depth: u32) -> std::result::Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let path = which(program).ok_or_else(|| format!("{} is not on PATH", program.display()))?;
    let key = std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino(), m.size(), m.ctime(), m.ctime_nsec()));
    let cached = key.and_then(|k| CHECKED.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|c| c.get(&k).cloned()));
    if let Some(verdict) = cached {
        return verdict;
    }
    let verdict = check_file(&path, depth);
    if let Some(k) = key {
        CHECKED.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(HashMap::new).insert(k, verdict.clone());
    }
    verdict
}

fn check_file(path: &Path, depth: u32) -> std::result::Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if let Some(rest) = bytes.strip_prefix(b"#!") {
        let line = rest.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut words = line.split_whitespace();
        let interp = words.next().ok_or_else(|| format!("{} starts with #! but names no interpreter", path.display()))?;
        // `#!/usr/bin/env python3`: the interpreter is the word after env.
        let interp = if Path::new(interp).file_name().is_some_and(|n| n == "env") { words.find(|w| !w.starts_with('-')).unwrap_or(interp) } else { interp };
        if depth > 4 {
            return Err(format!("{} is a script whose interpreters nest too deep", path.display()));
        }
        return check_program(Path::new(interp), depth + 1).map_err(|e| format!("{} is a script run by {interp}: {e}", path.display()));
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.permissions());
    if mode & 0o6000 != 0 {
        return Err(format!(
            "{} is set-user-ID or set-group-ID: the dynamic loader ignores LD_PRELOAD for it, so its clocks and timed waits stay in real time (run it at scale 1)",
            path.display()
        ));
    }
    match elf_class(&bytes) {
        None => Err(format!("{} is neither an ELF binary nor a #! script", path.display())),
        Some(Elf { bits32: true, .. }) => Err(format!(
            "{} is a 32-bit program: the preload library is 64-bit and its loader would skip it, so its clocks and timed waits stay in real time (run it at scale 1)",
            path.display()
        )),
        Some(Elf { interp: false, .. }) => {
            Err(format!("{} is statically linked: it ignores LD_PRELOAD, so its clocks and timed waits stay in real time (run it at scale 1)", path.display()))
        }
        Some(Elf { interp: true, .. }) if memmem(&bytes, b"\xff Go buildinf:") => Err(format!(
            "{} is a Go program: Go reads its clocks from the vDSO and waits with raw system calls, past any preload (run it at scale 1)",
            path.display()
        )),
        Some(_) => Ok(()),
    }
}

struct Elf {
    /// Whether it has a `PT_INTERP` program header (a dynamic loader runs it).
    interp: bool,
    /// Whether it is a 32-bit program (ELFCLASS32).
    bits32: bool,
}

fn elf_class(b: &[u8]) -> Option<Elf> {
    if b.get(..4)? != b"\x7fELF" || *b.get(5)? != 1 {
        return None; // not ELF, or not little-endian (nslab runs on x86_64 and aarch64)
    }
    let u16_at = |o: usize| b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]]) as usize);
    let u32_at = |o: usize| b.get(o..o + 4).map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize);
    let u64_at = |o: usize| b.get(o..o + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap_or_default()) as usize);
    let (phoff, phentsize, phnum) = match b.get(4)? {
        1 => (u32_at(0x1c)?, u16_at(0x2a)?, u16_at(0x2c)?),
        2 => (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?),
        _ => return None,
    };
    const PT_INTERP: usize = 3;
    let interp = (0..phnum).any(|i| u32_at(phoff + i * phentsize) == Some(PT_INTERP));
    Some(Elf { interp, bits32: b.get(4) == Some(&1) })
}

fn memmem(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// The preload library: `$NSLAB_TIMEWARP_LIB`, else [`LIB_NAME`] next to the running binary,
/// in `deps/` beside it, in its parent directory (a test binary in `target/<profile>/deps` finds the one cargo built in
/// `target/<profile>/deps` or `target/<profile>`), or in `../lib/nslab/` from it (an installed
/// layout: `bin/nslab`, `lib/nslab/libnslab_timewarp.so`).
///
/// # Errors
/// A message naming every place looked at and what to build.
pub fn preload_library() -> std::result::Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot tell where this program is, to find {LIB_NAME}: {e}"))?;
    find_library(std::env::var_os(LIB_ENV), &exe)
}

fn find_library(explicit: Option<OsString>, exe: &Path) -> std::result::Result<PathBuf, String> {
    if let Some(p) = explicit.filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(format!("{LIB_ENV}={} names no file", p.display())) };
    }
    let dir = exe.parent().unwrap_or(Path::new("/"));
    // deps/: where cargo leaves a dependency's cdylib (the CLI in target/<profile>).
    let mut looked = vec![dir.join(LIB_NAME), dir.join("deps").join(LIB_NAME)];
    if let Some(up) = dir.parent() {
        looked.push(up.join(LIB_NAME));
        looked.push(up.join("lib/nslab").join(LIB_NAME));
    }
    if let Some(found) = looked.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let list = looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    Err(format!(
        "the time-warp preload {LIB_NAME} is missing (looked at {list}): build it with `cargo build -p nslab-timewarp` (the same profile as this binary), or set {LIB_ENV} to its path"
    ))
}

/// Host directories the library was placed in by this process (it is placed once per host).
static PLACED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Places the preload library in the host's own `/run` (`run_copy` is the harness-side path
/// of that directory, inside the lab's checked artifact tree) and returns the environment a
/// warped program of that host needs: `LD_PRELOAD` (before any the command sets) and [`ENV`].
pub(crate) fn host_env(warp: &TimeWarp, run_copy: &Path, preload_before: Option<OsString>) -> std::result::Result<Vec<(OsString, OsString)>, String> {
    let lib = preload_library()?;
    {
        let mut placed = PLACED.lock().unwrap_or_else(|e| e.into_inner());
        let placed = placed.get_or_insert_with(HashSet::new);
        if !placed.contains(run_copy) {
            let bytes = std::fs::read(&lib).map_err(|e| format!("cannot read {}: {e}", lib.display()))?;
            let dir = crate::os::fsafe::artifact_dir(run_copy).and_then(|d| d.subdir("nslab-timewarp")).map_err(|e| e.to_string())?;
            // 0755/0644: a lab program that drops its privileges must still load it; the
            // owner-only artifact directory above keeps every other user of the machine out.
            std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(|e| format!("cannot open {} to the host's programs: {e}", dir.path().display()))?;
            dir.replace_file(LIB_NAME, &bytes, 0o644).map_err(|e| e.to_string())?;
            placed.insert(run_copy.to_path_buf());
        }
    }
    let mut preload = OsString::from(format!("{IN_HOST_DIR}/{LIB_NAME}"));
    if let Some(before) = preload_before.filter(|p| !p.is_empty()) {
        preload.push(":");
        preload.push(before);
    }
    Ok(vec![("LD_PRELOAD".into(), preload), (ENV.into(), warp.env_value().into())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_are_checked() {
        for bad in [0.5, 0.0, -1.0, f64::NAN, f64::INFINITY, 1000.5] {
            let e = TimeWarp::new(bad).unwrap_err();
            assert!(e.to_string().starts_with(&format!("invalid time scale {bad}: expected a finite number from 1 to 1000")), "{e}");
        }
        assert_eq!(TimeWarp::new(1.0).unwrap().scale(), 1.0);
        assert_eq!(TimeWarp::new(1000.0).unwrap().scale(), 1000.0);
    }

    #[test]
    fn conversions_are_inverse() {
        let w = TimeWarp::new(30.0).unwrap();
        assert_eq!(w.to_program(Duration::from_millis(100)), Duration::from_secs(3));
        assert_eq!(w.to_real(Duration::from_secs(3600)), Duration::from_secs(120));
        let d = Duration::new(12345, 678_901_234);
        assert!(w.to_real(w.to_program(d)).abs_diff(d) <= Duration::from_nanos(1));
    }

    #[test]
    fn stamps_convert_from_the_origin() {
        let w = TimeWarp::new(10.0).unwrap();
        let wall = w.inner.wall;
        assert_eq!(w.program_since_origin(wall + Duration::from_secs(2)), Duration::from_secs(20));
        assert_eq!(w.program_since_origin(wall - Duration::from_secs(2)), Duration::ZERO);
        assert_eq!(w.program_at(w.origin() + Duration::from_millis(250)), Duration::from_millis(2500));
        let p = w.program_now();
        assert!(p >= Duration::ZERO && w.program_now() >= p);
    }

    #[test]
    fn env_value_reads_back() {
        let w = TimeWarp::new(12.5).unwrap();
        let v = w.env_value();
        let parts: Vec<&str> = v.split(' ').collect();
        assert_eq!(parts.len(), 3, "{v}");
        assert_eq!(parts[0].parse::<f64>().unwrap(), 12.5);
        assert!(parts[1].parse::<i128>().unwrap() > 0 && parts[2].parse::<i128>().unwrap() > 1_600_000_000_000_000_000);
    }

    #[test]
    fn an_origin_in_the_past_moves_both_clocks_back() {
        let now = TimeWarp::new(10.0).unwrap();
        let past = now.origin() - Duration::from_secs(5);
        let w = TimeWarp::with_origin(10.0, past).unwrap();
        assert_eq!(w.origin(), past);
        assert_eq!(w.program_at_lab(past, Duration::from_secs(1)), Duration::from_secs(10));
        // Its clock origins are 5 s before a warp made now, within the microseconds between them.
        let mono_back = now.inner.mono_ns - w.inner.mono_ns;
        let wall_back = now.inner.wall_ns - w.inner.wall_ns;
        for back in [mono_back, wall_back] {
            assert!((4_990_000_000..5_100_000_000).contains(&back), "{back}");
        }
        assert!(TimeWarp::with_origin(0.5, past).is_err());
    }

    #[test]
    fn program_readings_convert_from_the_origin() {
        let w = TimeWarp::new(10.0).unwrap();
        let m0 = Duration::from_nanos(w.inner.mono_ns as u64);
        assert_eq!(w.program_monotonic(m0 + Duration::from_secs(30)), Some(Duration::from_secs(30)));
        assert_eq!(w.program_monotonic(m0 - Duration::from_nanos(1)), None);
        let w0 = Duration::from_nanos(w.inner.wall_ns as u64);
        assert_eq!(w.program_realtime(w0 + Duration::from_millis(1500)), Some(Duration::from_millis(1500)));
        assert_eq!(w.program_at_lab(w.origin() - Duration::from_secs(1), Duration::from_secs(2)), Duration::from_secs(10));
    }

    #[test]
    fn the_library_is_looked_for_beside_the_binary_and_named_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let deps = dir.path().join("debug/deps");
        std::fs::create_dir_all(&deps).unwrap();
        let exe = deps.join("timewarp-0123");
        let e = find_library(None, &exe).unwrap_err();
        assert!(e.starts_with(&format!("the time-warp preload libnslab_timewarp.so is missing (looked at {}, ", deps.join(LIB_NAME).display())), "{e}");
        assert!(e.ends_with("build it with `cargo build -p nslab-timewarp` (the same profile as this binary), or set NSLAB_TIMEWARP_LIB to its path"), "{e}");
        std::fs::write(dir.path().join("debug").join(LIB_NAME), b"").unwrap();
        assert_eq!(find_library(None, &exe), Ok(dir.path().join("debug").join(LIB_NAME)));
        std::fs::write(deps.join(LIB_NAME), b"").unwrap();
        assert_eq!(find_library(None, &exe), Ok(deps.join(LIB_NAME)));
        let cli = dir.path().join("debug/nslab");
        assert_eq!(find_library(None, &cli), Ok(dir.path().join("debug").join(LIB_NAME)));
        assert_eq!(find_library(Some("/nonexistent/x.so".into()), &exe), Err("NSLAB_TIMEWARP_LIB=/nonexistent/x.so names no file".into()));
    }

    #[test]
    fn static_and_dynamic_programs_are_told_apart() {
        assert_eq!(TimeWarp::check_program("/bin/sh"), Ok(()));
        let dir = tempfile::tempdir().unwrap();
        let elf = |interp: bool| {
            let mut b = vec![0u8; 0x40 + 2 * 0x38];
            b[..4].copy_from_slice(b"\x7fELF");
            b[4] = 2;
            b[5] = 1;
            b[0x20..0x28].copy_from_slice(&0x40u64.to_le_bytes());
            b[0x36..0x38].copy_from_slice(&0x38u16.to_le_bytes());
            b[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
            b[0x40..0x44].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
            b[0x78..0x7c].copy_from_slice(&(if interp { 3u32 } else { 1 }).to_le_bytes());
            b
        };
        let mut b32 = elf(true);
        b32[4] = 1;
        let p32 = dir.path().join("p32");
        std::fs::write(&p32, b32).unwrap();
        assert!(TimeWarp::check_program(&p32).unwrap_err().contains("is a 32-bit program"));
        let stat = dir.path().join("static");
        std::fs::write(&stat, elf(false)).unwrap();
        let e = TimeWarp::check_program(&stat).unwrap_err();
        assert!(e.ends_with("is statically linked: it ignores LD_PRELOAD, so its clocks and timed waits stay in real time (run it at scale 1)"), "{e}");
        let dynamic = dir.path().join("dynamic");
        std::fs::write(&dynamic, elf(true)).unwrap();
        assert_eq!(TimeWarp::check_program(&dynamic), Ok(()));
        let mut go = elf(true);
        go.extend_from_slice(b"\xff Go buildinf:");
        let gop = dir.path().join("gop");
        std::fs::write(&gop, go).unwrap();
        assert!(TimeWarp::check_program(&gop).unwrap_err().contains("is a Go program"));
        let suid = dir.path().join("suid");
        std::fs::write(&suid, elf(true)).unwrap();
        std::fs::set_permissions(&suid, std::os::unix::fs::PermissionsExt::from_mode(0o4755)).unwrap();
        assert!(TimeWarp::check_program(&suid).unwrap_err().ends_with(
            "is set-user-ID or set-group-ID: the dynamic loader ignores LD_PRELOAD for it, so its clocks and timed waits stay in real time (run it at scale 1)"
        ));
        let script = dir.path().join("script");
        std::fs::write(&script, format!("#!{}\necho\n", stat.display())).unwrap();
        let e = TimeWarp::check_program(&script).unwrap_err();
        assert!(e.starts_with(&format!("{} is a script run by {}: ", script.display(), stat.display())), "{e}");
    }
}
