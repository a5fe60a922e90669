//! Reading a bundle that may come from anyone: [`validate`] reads the whole archive through
//! every check without writing anything; [`extract`] reads it again, with the same checks, into
//! a fresh directory the caller made. Sizes are counted as the stream is decompressed, not
//! taken from the headers alone, so a small file that inflates without end (a zip bomb) stops
//! at the limit.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nslab::os::fsafe::Dir;
use tar::EntryType;

use super::error::{BundleError, Refusal};
use super::manifest::{self, Manifest};

/// How much a bundle may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Members (files and directories), at most.
    pub members: usize,
    /// Bytes of one member, at most.
    pub member_bytes: u64,
    /// Bytes of the whole decompressed stream (headers included), at most.
    pub total_bytes: u64,
}

impl Default for Limits {
    /// 50,000 members, 1 GiB per member, 4 GiB in all: far above a trial's artifacts (a
    /// stale-dns trial's bundle holds a few hundred kilobytes), far below a full disk.
    fn default() -> Self {
        Limits { members: 50_000, member_bytes: 1 << 30, total_bytes: 4 << 30 }
    }
}

/// What [`extract`] wrote.
#[derive(Debug)]
pub struct Extracted {
    /// The manifest.
    pub manifest: Manifest,
    /// The scenario file, extracted.
    pub scenario: PathBuf,
    /// The recorded artifacts, extracted (`<dir>/artifacts`).
    pub artifacts: PathBuf,
    /// How many files were written.
    pub files: usize,
}

/// Reads the bundle at `path` through every check, writing nothing; returns its manifest.
///
/// # Errors
/// [`BundleError::Refused`] with the [`Refusal`]; [`BundleError::Read`] when it cannot be opened.
pub fn validate(path: &Path, limits: &Limits) -> Result<Manifest, BundleError> {
    let file = open(path)?;
    walk(path, file, limits, |_, _, _| Ok(()))
}

/// Checks the bundle at `path` ([`validate`]), then extracts it into `dest` (a directory the
/// caller made and checked, normally new): directories `0700`, files `0600` (`0700` when the
/// member was executable), each created new without following links, nothing outside `dest`.
///
/// # Errors
/// As [`validate`]; [`BundleError::Write`] when a file cannot be made.
pub fn extract(path: &Path, limits: &Limits, dest: &Dir) -> Result<Extracted, BundleError> {
    let mut file = open(path)?;
    let manifest = walk(path, file.try_clone().map_err(|source| BundleError::Read { path: path.into(), source })?, limits, |_, _, _| Ok(()))?;
    file.rewind().map_err(|source| BundleError::Read { path: path.into(), source })?;
    let mut files = 0;
    let again = walk(path, file, limits, |name, kind, data| {
        let wpath = dest.path().join(name);
        let werr = |source: io::Error| BundleError::Write { path: wpath.clone(), source };
        let rel = Path::new(name);
        match kind {
            Kind::Dir => {
                dest.subdirs(rel).map_err(|e| werr(e.into()))?;
            }
            Kind::File { executable } => {
                let parent = rel.parent().unwrap_or(Path::new(""));
                let dir = dest.subdirs(parent).map_err(|e| werr(e.into()))?;
                let fname = rel.file_name().ok_or_else(|| werr(io::Error::other("no file name")))?;
                let mut f = dir.create_file(fname, if executable { 0o700 } else { 0o600 }).map_err(|e| werr(e.into()))?;
                io::copy(data, &mut f).map_err(werr)?;
                files += 1;
            }
        }
        Ok(())
    })?;
    if again != manifest {
        return Err(refused(path, Refusal::NotABundle("it changed while it was read".into())));
    }
    Ok(Extracted { scenario: dest.path().join(&manifest.scenario), artifacts: dest.path().join("artifacts"), manifest, files })
}

fn open(path: &Path) -> Result<File, BundleError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path).map_err(|source| BundleError::Read { path: path.into(), source })
}

fn refused(path: &Path, why: Refusal) -> BundleError {
    BundleError::Refused { path: path.into(), why }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File { executable: bool },
}

/// Counts the decompressed bytes; past the limit, reads fail and `hit` says why.
struct Capped<R> {
    inner: R,
    left: u64,
    hit: Arc<AtomicBool>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // One byte more than allowed, or the end: only the first is an error.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => {
                    self.hit.store(true, Ordering::SeqCst);
                    Err(io::Error::other("the decompressed size limit was reached"))
                }
            };
        }
        let want = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads every member of the archive, checking each; `each` gets the regular files and
/// directories that pass (name normalised, without `./`), the manifest included.
fn walk(path: &Path, file: File, limits: &Limits, mut each: impl FnMut(&str, Kind, &mut dyn Read) -> Result<(), BundleError>) -> Result<Manifest, BundleError> {
    let hit = Arc::new(AtomicBool::new(false));
    let stream = Capped { inner: flate2::read::GzDecoder::new(io::BufReader::new(file)), left: limits.total_bytes, hit: hit.clone() };
    let mut archive = tar::Archive::new(stream);
    let total = |e: &io::Error| {
        if hit.load(Ordering::SeqCst) {
            Refusal::TotalTooLarge { limit: limits.total_bytes }
        } else {
            Refusal::NotABundle(e.to_string())
        }
    };
    let entries = archive.entries().map_err(|e| refused(path, total(&e)))?;
    let mut manifest: Option<Manifest> = None;
    // Every path taken, with whether it is a file.
    let mut seen: BTreeMap<String, bool> = BTreeMap::new();
    let mut count = 0usize;
    for entry in entries {
        let mut entry = entry.map_err(|e| refused(path, total(&e)))?;
        count += 1;
        if count > limits.members {
            return Err(refused(path, Refusal::TooManyMembers { limit: limits.members }));
        }
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let name = member_name(&raw).map_err(|w| refused(path, w))?;
        let header = entry.header();
        let kind = match header.entry_type() {
            EntryType::Regular | EntryType::Continuous => Kind::File { executable: header.mode().unwrap_or(0) & 0o111 != 0 },
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink => {
                let target = entry.link_name_bytes().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default();
                return Err(refused(path, Refusal::Symlink { member: shown, target }));
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().map(|t| String::from_utf8_lossy(&t).into_owned()).unwrap_or_default();
                return Err(refused(path, Refusal::HardLink { member: shown, target }));
            }
            other => {
                let kind = match other {
                    EntryType::Char => "character device",
                    EntryType::Block => "block device",
                    EntryType::Fifo => "fifo",
                    EntryType::XGlobalHeader => "pax global header",
                    EntryType::GNUSparse => "sparse file",
                    _ => "member of another kind",
                };
                return Err(refused(path, Refusal::Special { member: shown, kind }));
            }
        };
        if count == 1 && name != "manifest.json" {
            return Err(refused(path, Refusal::NoManifest { found: shown }));
        }
        // A path below one taken as a file, or the same path again.
        let mut above = String::new();
        for part in name.split('/').collect::<Vec<_>>().split_last().map(|(_, init)| init.to_vec()).unwrap_or_default() {
            if !above.is_empty() {
                above.push('/');
            }
            above.push_str(part);
            if seen.get(&above) == Some(&true) {
                return Err(refused(path, Refusal::UnderAFile { member: name.clone(), file: above }));
            }
            seen.entry(above.clone()).or_insert(false);
        }
        let is_file = matches!(kind, Kind::File { .. });
        match seen.insert(name.clone(), is_file) {
            Some(true) => return Err(refused(path, Refusal::Duplicate(name))),
            Some(false) if is_file => return Err(refused(path, Refusal::Duplicate(name))),
            Some(false) => continue,
            None => {}
        }
        let limit = if count == 1 { manifest::MAX_BYTES.min(limits.member_bytes) } else { limits.member_bytes };
        if entry.size() > limit {
            return Err(refused(path, Refusal::MemberTooLarge { member: name, limit }));
        }
        if count == 1 {
            let mut bytes = Vec::new();
            (&mut entry).take(limit + 1).read_to_end(&mut bytes).map_err(|e| refused(path, total(&e)))?;
            manifest = Some(Manifest::parse(&bytes).map_err(|w| refused(path, w))?);
            each(&name, kind, &mut bytes.as_slice())?;
            continue;
        }
        let mut counted = Counted { inner: (&mut entry).take(limit + 1), n: 0 };
        match each(&name, kind, &mut counted) {
            Err(BundleError::Write { source, .. }) if hit.load(Ordering::SeqCst) => {
                let _ = source;
                return Err(refused(path, Refusal::TotalTooLarge { limit: limits.total_bytes }));
            }
            r => r?,
        }
        // Read what `each` left, still through the limits.
        io::copy(&mut counted, &mut io::sink()).map_err(|e| refused(path, total(&e)))?;
        if counted.n > limit {
            return Err(refused(path, Refusal::MemberTooLarge { member: name, limit }));
        }
    }
    let Some(manifest) = manifest else { return Err(refused(path, Refusal::NoManifest { found: "nothing".into() })) };
    let scenario_ok = manifest.scenario.starts_with("scenarios/")
        && manifest.scenario.ends_with(".toml")
        && member_name(manifest.scenario.as_bytes()).is_ok_and(|n| n == manifest.scenario)
        && seen.get(&manifest.scenario) == Some(&true);
    if !scenario_ok {
        return Err(refused(path, Refusal::ScenarioOutside(manifest.scenario.clone())));
    }
    Ok(manifest)
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

/// A member's path made plain (`./a//b/` -> `a/b`), or why it is refused.
fn member_name(raw: &[u8]) -> Result<String, Refusal> {
    let shown = String::from_utf8_lossy(raw).into_owned();
    let Ok(s) = std::str::from_utf8(raw) else { return Err(Refusal::BadName(shown)) };
    if s.starts_with('/') {
        return Err(Refusal::Absolute(shown));
    }
    let mut parts = Vec::new();
    for p in s.split('/') {
        match p {
            "" | "." => {}
            ".." => return Err(Refusal::Traversal(shown)),
            p if p.contains('\0') => return Err(Refusal::BadName(shown)),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(Refusal::BadName(shown));
    }
    Ok(parts.join("/"))
}
