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
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| BundleError::Read { path: path.into(), source })
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

#[cfg(test)]
mod tests {
    //! Hostile and broken bundles, each crafted with raw tar headers, refused with its message;
    //! and a refused bundle writes nothing, not even inside the directory given.

    use super::*;
    use crate::bundle::machine::Machine;
    use crate::bundle::manifest::FORMAT;
    use crate::runner::report::Outcome;

    fn manifest(scenario: &str) -> Vec<u8> {
        let m = Manifest {
            format: FORMAT,
            nslab: "0.1.0".into(),
            trial: "agree/fail/dual-stack".into(),
            scenario: scenario.into(),
            scenario_origin: "/somewhere/agree/fail.toml".into(),
            profile: "dual-stack".into(),
            outcome: Outcome::Failed,
            reason: None,
            machine: Machine::default(),
        };
        serde_json::to_vec(&m).expect("serialisable")
    }

    /// One raw member: its name as bytes (no checks), type, data, link target.
    struct M<'a> {
        name: &'a [u8],
        kind: EntryType,
        data: Vec<u8>,
        link: &'a [u8],
        size: Option<u64>,
    }

    fn file<'a>(name: &'a str, data: &[u8]) -> M<'a> {
        M { name: name.as_bytes(), kind: EntryType::Regular, data: data.to_vec(), link: b"", size: None }
    }

    fn special<'a>(name: &'a str, kind: EntryType, link: &'a str) -> M<'a> {
        M { name: name.as_bytes(), kind, data: Vec::new(), link: link.as_bytes(), size: None }
    }

    fn archive(members: &[M<'_>]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for m in members {
            let mut h = tar::Header::new_old();
            let name = &mut h.as_old_mut().name;
            name[..m.name.len()].copy_from_slice(m.name);
            let link = &mut h.as_old_mut().linkname;
            link[..m.link.len()].copy_from_slice(m.link);
            h.set_entry_type(m.kind);
            h.set_mode(0o600);
            h.set_size(m.size.unwrap_or(m.data.len() as u64));
            h.set_cksum();
            b.append(&h, m.data.as_slice()).expect("append");
        }
        b.into_inner().expect("tar").finish().expect("gzip")
    }

    fn ok_members() -> Vec<M<'static>> {
        vec![
            M { name: b"manifest.json", kind: EntryType::Regular, data: manifest("scenarios/agree/fail.toml"), link: b"", size: None },
            file("scenarios/agree/fail.toml", b"description = \"x\"\n"),
            file("artifacts/results.json", b"{}"),
        ]
    }

    const SMALL: Limits = Limits { members: 10, member_bytes: 4096, total_bytes: 64 * 1024 };

    /// Writes `bytes` as a bundle, checks it, and extracts it into a new directory, which must
    /// stay empty when the bundle is refused; returns the refusal's message.
    fn refusal(bytes: &[u8], limits: &Limits) -> String {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("x.nslab");
        std::fs::write(&path, bytes).expect("write");
        let v = validate(&path, limits).expect_err("refused");
        let dest = nslab::os::fsafe::artifact_dir(&tmp.path().join("out")).expect("dest");
        let e = extract(&path, limits, &dest).expect_err("refused");
        assert_eq!(v.to_string(), e.to_string());
        let left: Vec<_> = std::fs::read_dir(dest.path()).expect("read").collect();
        assert!(left.is_empty(), "a refused bundle wrote {left:?}");
        let BundleError::Refused { why, .. } = e else { panic!("not a refusal: {e}") };
        why.to_string()
    }

    fn with(extra: M<'static>) -> Vec<u8> {
        let mut m = ok_members();
        m.push(extra);
        archive(&m)
    }

    #[test]
    fn a_good_bundle_extracts_inside_the_directory_only() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let path = tmp.path().join("x.nslab");
        std::fs::write(&path, archive(&ok_members())).expect("write");
        let dest = nslab::os::fsafe::artifact_dir(&tmp.path().join("out")).expect("dest");
        let x = extract(&path, &SMALL, &dest).expect("extracts");
        assert_eq!(x.manifest.trial, "agree/fail/dual-stack");
        assert_eq!(x.files, 3);
        assert_eq!(std::fs::read_to_string(tmp.path().join("out/scenarios/agree/fail.toml")).expect("read"), "description = \"x\"\n");
        assert_eq!(x.scenario, tmp.path().join("out/scenarios/agree/fail.toml"));
    }

    #[test]
    fn path_traversal_is_refused() {
        assert_eq!(
            refusal(&with(file("artifacts/../../evil", b"x")), &SMALL),
            "member \"artifacts/../../evil\" leaves the bundle ('..' in its path); members are relative paths inside it"
        );
    }

    #[test]
    fn an_absolute_path_is_refused() {
        assert_eq!(refusal(&with(file("/etc/evil", b"x")), &SMALL), "member \"/etc/evil\" is an absolute path; members are relative paths inside the bundle");
    }

    #[test]
    fn a_symlink_is_refused() {
        assert_eq!(
            refusal(&with(special("artifacts/passwd", EntryType::Symlink, "/etc/passwd")), &SMALL),
            "member \"artifacts/passwd\" is a symbolic link (to \"/etc/passwd\"); a bundle holds regular files and directories only"
        );
    }

    #[test]
    fn a_hard_link_is_refused() {
        assert_eq!(
            refusal(&with(special("artifacts/shadow", EntryType::Link, "etc/shadow")), &SMALL),
            "member \"artifacts/shadow\" is a hard link (to \"etc/shadow\"); a bundle holds regular files and directories only"
        );
    }

    #[test]
    fn devices_and_fifos_are_refused() {
        assert_eq!(
            refusal(&with(special("artifacts/sda", EntryType::Block, "")), &SMALL),
            "member \"artifacts/sda\" is a block device; a bundle holds regular files and directories only"
        );
        assert_eq!(
            refusal(&with(special("artifacts/null", EntryType::Char, "")), &SMALL),
            "member \"artifacts/null\" is a character device; a bundle holds regular files and directories only"
        );
        assert_eq!(
            refusal(&with(special("artifacts/pipe", EntryType::Fifo, "")), &SMALL),
            "member \"artifacts/pipe\" is a fifo; a bundle holds regular files and directories only"
        );
    }

    #[test]
    fn a_member_over_the_limit_is_refused_by_its_size() {
        assert_eq!(refusal(&with(file("artifacts/big", &vec![0u8; 5000])), &SMALL), "member \"artifacts/big\" is larger than 4096 bytes, the limit per member");
        // A header announcing a huge member, with no data behind it: refused before reading.
        let huge = M { name: b"artifacts/huge", kind: EntryType::Regular, data: Vec::new(), link: b"", size: Some(1 << 40) };
        let mut m = ok_members();
        m.push(huge);
        // The archive's data cannot be appended for a size it does not have: the header alone,
        // written raw after the others (the end-of-archive blocks follow it).
        let mut b = tar::Builder::new(Vec::new());
        for x in &m[..3] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(x.data.len() as u64);
            h.set_mode(0o600);
            b.append_data(&mut h, std::str::from_utf8(x.name).expect("utf-8"), x.data.as_slice()).expect("append");
        }
        let mut h = tar::Header::new_gnu();
        h.set_path("artifacts/huge").expect("path");
        h.set_size(m[3].size.expect("set"));
        h.set_mode(0o600);
        h.set_cksum();
        std::io::Write::write_all(b.get_mut(), h.as_bytes()).expect("header");
        let raw = b.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).expect("gzip");
        let bytes = gz.finish().expect("gzip");
        assert_eq!(refusal(&bytes, &SMALL), "member \"artifacts/huge\" is larger than 4096 bytes, the limit per member");
    }

    #[test]
    fn a_stream_that_inflates_past_the_total_is_refused_while_reading() {
        // Ten kilobytes of zeros compress to a few dozen bytes each: the bundle file is tiny,
        // what it inflates to is over the total; each member is within the member limit.
        let limits = Limits { members: 100, member_bytes: 16 * 1024, total_bytes: 40 * 1024 };
        let mut m = ok_members();
        let names: Vec<String> = (0..8).map(|i| format!("artifacts/zeros{i}")).collect();
        for n in &names {
            m.push(M { name: n.as_bytes(), kind: EntryType::Regular, data: vec![0u8; 10 * 1024], link: b"", size: None });
        }
        let bytes = archive(&m);
        assert!(bytes.len() < 4096, "the crafted bundle is {} bytes", bytes.len());
        assert_eq!(refusal(&bytes, &limits), "its content exceeds 40960 bytes once decompressed, the limit per bundle");
    }

    #[test]
    fn too_many_members_are_refused() {
        let mut m = ok_members();
        let names: Vec<String> = (0..10).map(|i| format!("artifacts/f{i}")).collect();
        m.extend(names.iter().map(|n| file(n, b"x")));
        assert_eq!(refusal(&archive(&m), &SMALL), "it has more than 10 members, the limit per bundle");
    }

    #[test]
    fn a_duplicate_member_is_refused() {
        assert_eq!(refusal(&with(file("artifacts/results.json", b"{\"again\":1}")), &SMALL), "member \"artifacts/results.json\" appears twice");
        assert_eq!(
            refusal(&with(file("artifacts/results.json/x", b"")), &SMALL),
            "member \"artifacts/results.json/x\" is below \"artifacts/results.json\", which is a file"
        );
    }

    #[test]
    fn a_missing_or_wrong_manifest_is_refused() {
        let mut m = ok_members();
        m.remove(0);
        assert_eq!(refusal(&archive(&m), &SMALL), "its first member is \"scenarios/agree/fail.toml\", expected manifest.json");
        assert_eq!(refusal(&archive(&[]), &SMALL), "its first member is \"nothing\", expected manifest.json");
        let mut m = ok_members();
        m[0].data = b"{\"format\": 1, \"trial\": 3}".to_vec();
        assert_eq!(refusal(&archive(&m), &SMALL), "manifest.json is not a valid manifest: invalid type: integer `3`, expected a string");
    }

    #[test]
    fn another_format_version_is_refused() {
        let mut m = ok_members();
        m[0].data = String::from_utf8(manifest("scenarios/agree/fail.toml")).expect("utf-8").replace("\"format\":1", "\"format\":2").into_bytes();
        assert_eq!(
            refusal(&archive(&m), &SMALL),
            format!("manifest.json has format version 2; this nslab ({}) reads format version 1", env!("CARGO_PKG_VERSION"))
        );
    }

    #[test]
    fn a_scenario_outside_the_bundle_is_refused() {
        let mut m = ok_members();
        m[0].data = manifest("../fail.toml");
        assert_eq!(
            refusal(&archive(&m), &SMALL),
            "the manifest's scenario \"../fail.toml\" is not a file of the bundle below scenarios/ (expected scenarios/<name>.toml)"
        );
        let mut m = ok_members();
        m[0].data = manifest("scenarios/agree/absent.toml");
        assert_eq!(
            refusal(&archive(&m), &SMALL),
            "the manifest's scenario \"scenarios/agree/absent.toml\" is not a file of the bundle below scenarios/ (expected scenarios/<name>.toml)"
        );
    }

    #[test]
    fn a_file_that_is_not_a_bundle_is_refused() {
        let why = refusal(b"PK\x03\x04 a zip file, not a bundle", &SMALL);
        assert!(why.starts_with("not an nslab bundle (a gzip-compressed tar archive): "), "{why}");
    }
}
