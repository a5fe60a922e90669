//! Making a bundle from a trial's artifact directory: its scenario (found through the
//! `environment.json` the trial wrote), the scenario folder's other files, every artifact, the
//! machine's facts. The output file is created new (never through a link, `0600`).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::BundleError;
use super::machine::Machine;
use super::manifest::{Manifest, FORMAT};
use crate::runner::report::Outcome;

/// The most files a bundle takes from the scenario's folder.
pub const FOLDER_FILES: usize = 1000;
/// The most bytes a bundle takes from the scenario's folder.
pub const FOLDER_BYTES: u64 = 64 << 20;

/// What [`create`] wrote.
#[derive(Debug)]
pub struct Written {
    /// The manifest.
    pub manifest: Manifest,
    /// The trial's artifact directory it took.
    pub trial_dir: PathBuf,
    /// Files of the scenario folder (the scenario included).
    pub scenario_files: usize,
    /// Artifact files.
    pub artifact_files: usize,
    /// Bytes of the files, uncompressed.
    pub raw_bytes: u64,
    /// Bytes of the bundle.
    pub bundle_bytes: u64,
    /// Links and special files left out (a bundle holds regular files only), by path.
    pub skipped: Vec<PathBuf>,
}

/// The artifact directory of `trial` below `dir` (a run's artifact directory, or the
/// artifacts root): the directory whose `environment.json` names it, searched six levels deep
/// without following links.
///
/// # Errors
/// [`BundleError::NoSuchTrial`] (with the trials found) or [`BundleError::Ambiguous`].
pub fn find_trial(dir: &Path, trial: &str) -> Result<PathBuf, BundleError> {
    let mut found: Vec<(String, PathBuf)> = Vec::new();
    let mut todo = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = todo.pop() {
        if let Some(t) = read_json(&d.join("environment.json")).ok().and_then(|v| v.get("trial").and_then(Value::as_str).map(String::from)) {
            found.push((t, d));
            continue;
        }
        if depth >= 6 {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push((e.path(), depth + 1));
            }
        }
    }
    let mut hits: Vec<PathBuf> = found.iter().filter(|(t, _)| t == trial).map(|(_, d)| d.clone()).collect();
    hits.sort();
    match hits.len() {
        1 => Ok(hits.remove(0)),
        0 => {
            let mut names: Vec<&str> = found.iter().map(|(t, _)| t.as_str()).collect();
            names.sort();
            names.dedup();
            let found = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            Err(BundleError::NoSuchTrial { path: dir.into(), trial: trial.into(), found })
        }
        n => Err(BundleError::Ambiguous {
            path: dir.into(),
            trial: trial.into(),
            count: n,
            list: hits.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
        }),
    }
}

fn read_json(path: &Path) -> Result<Value, BundleError> {
    let text = std::fs::read(path).map_err(|source| BundleError::Read { path: path.into(), source })?;
    serde_json::from_slice(&text).map_err(|e| BundleError::Source { path: path.into(), what: format!("not JSON ({e})") })
}

/// Bundles the trial whose artifact directory is `trial_dir` into the new file `out`.
///
/// # Errors
/// [`BundleError::NotATrial`] when `trial_dir` has no `environment.json`;
/// [`BundleError::Source`] when its files say something unusable (no scenario, a scenario
/// gone); [`BundleError::Read`]/[`BundleError::Write`] for the files. A bundle left
/// incomplete by an error is removed.
pub fn create(trial_dir: &Path, out: &Path) -> Result<Written, BundleError> {
    let env_path = trial_dir.join("environment.json");
    if !env_path.is_file() {
        return Err(BundleError::NotATrial { path: trial_dir.into() });
    }
    let env = read_json(&env_path)?;
    let field = |k: &str| env.get(k).and_then(Value::as_str).map(String::from);
    let source = |what: &str| BundleError::Source { path: env_path.clone(), what: what.into() };
    let trial = field("trial").ok_or_else(|| source("no \"trial\" field"))?;
    let profile = field("profile").ok_or_else(|| source("no \"profile\" field"))?;
    let resolved = read_json(&trial_dir.join("scenario.resolved.json")).ok();
    let scenario_file = field("scenario_file")
        .or_else(|| resolved.as_ref().and_then(|r| r.get("scenario")).and_then(Value::as_str).map(String::from))
        .ok_or_else(|| source("no \"scenario_file\" field, and no scenario.resolved.json naming the scenario"))?;
    let scenario_file = PathBuf::from(scenario_file);
    let scenario = crate::scenario::load(&scenario_file)
        .map_err(|e| BundleError::Source { path: scenario_file.clone(), what: format!("the trial's scenario cannot be loaded: {e}") })?;
    // The scenario's name (the trial's name without its profile) places it in the bundle so
    // that, extracted, it gives its trial the same name.
    let name = trial.strip_suffix(&format!("/{profile}")).ok_or_else(|| source("the trial's name does not end with its profile"))?;
    let member = format!("scenarios/{name}.toml");
    let scenario_dir = scenario.dir().to_path_buf();
    let base = Path::new(&member).parent().map(Path::to_path_buf).unwrap_or_default();

    let results = read_json(&trial_dir.join("results.json")).ok();
    let (outcome, reason) = outcome_of(results.as_ref());
    let mut machine = Machine::without_programs();
    // The kernel and programs as the trial saw them; the sysctls as they are now.
    machine.kernel = field("kernel").or(machine.kernel);
    machine.arch = field("machine").or(machine.arch);
    machine.programs = match env.get("programs").and_then(Value::as_object) {
        Some(p) => p.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect(),
        None => Machine::here(&scenario).programs,
    };
    let manifest = Manifest {
        format: FORMAT,
        nslab: env!("CARGO_PKG_VERSION").into(),
        trial: trial.clone(),
        scenario: member.clone(),
        scenario_origin: scenario_file.display().to_string(),
        profile,
        outcome,
        reason,
        machine,
    };

    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(out)
        .map_err(|source| BundleError::Write { path: out.into(), source })?;
    let ino = file.metadata().map(|m| (m.dev(), m.ino())).ok();
    let mut w = Written { manifest, trial_dir: trial_dir.into(), scenario_files: 0, artifact_files: 0, raw_bytes: 0, bundle_bytes: 0, skipped: Vec::new() };
    let r = write_archive(
        file.try_clone().map_err(|source| BundleError::Write { path: out.into(), source })?,
        out,
        &mut w,
        &scenario_file,
        &scenario_dir,
        &base,
        &member,
    );
    if let Err(e) = r {
        // Ours (created new above, the same inode): an incomplete bundle must not be taken for one.
        if std::fs::symlink_metadata(out).ok().map(|m| (m.dev(), m.ino())) == ino {
            let _ = std::fs::remove_file(out);
        }
        return Err(e);
    }
    w.bundle_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(w)
}

#[allow(clippy::too_many_arguments)]
fn write_archive(file: File, out: &Path, w: &mut Written, scenario_file: &Path, scenario_dir: &Path, base: &Path, member: &str) -> Result<(), BundleError> {
    let werr = |source: io::Error| BundleError::Write { path: out.into(), source };
    let gz = flate2::write::GzEncoder::new(io::BufWriter::new(file), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let manifest = serde_json::to_vec_pretty(&w.manifest).map_err(|e| werr(io::Error::other(e)))?;
    append(&mut tar, "manifest.json", &mut manifest.as_slice(), manifest.len() as u64, false).map_err(werr)?;
    // The scenario, then the other files of its folder (not the other scenarios).
    let mut files = vec![(scenario_file.to_path_buf(), member.to_string())];
    let mut others = Vec::new();
    collect(scenario_dir, Path::new(""), false, &mut others, &mut w.skipped)?;
    // A scenario kept in a big folder (a home directory) would take all of it: refuse instead.
    let folder_bytes: u64 = others.iter().filter_map(|(p, _)| std::fs::symlink_metadata(p).ok()).map(|m| m.len()).sum();
    if others.len() > FOLDER_FILES || folder_bytes > FOLDER_BYTES {
        return Err(BundleError::Source {
            path: scenario_dir.into(),
            what: format!(
                "the scenario's folder holds {} files, {folder_bytes} bytes (a bundle takes at most {FOLDER_FILES} files, {FOLDER_BYTES} bytes of it); move the scenario and its files into a folder of their own",
                others.len()
            ),
        });
    }
    let same = |p: &Path| std::fs::canonicalize(p).ok() == std::fs::canonicalize(scenario_file).ok();
    for (path, rel) in others {
        let top_level_scenario = rel.components().count() == 1 && rel.extension().is_some_and(|e| e == "toml");
        if top_level_scenario || same(&path) {
            continue;
        }
        files.push((path, base.join(&rel).to_string_lossy().into_owned()));
    }
    w.scenario_files = files.len();
    let mut arts = Vec::new();
    collect(&w.trial_dir.clone(), Path::new(""), true, &mut arts, &mut w.skipped)?;
    arts.retain(|(_, rel)| rel != Path::new(nslab::os::fsafe::LIVE_MARKER));
    w.artifact_files = arts.len();
    // What the reader would refuse is not written.
    let limits = super::read::Limits::default();
    if files.len() + arts.len() + 1 > limits.members {
        return Err(BundleError::Source { path: w.trial_dir.clone(), what: format!("more than {} files in all, the limit of a bundle", limits.members) });
    }
    files.extend(arts.into_iter().map(|(p, rel)| (p, Path::new("artifacts").join(rel).to_string_lossy().into_owned())));
    for (path, name) in files {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| BundleError::Read { path: path.clone(), source })?;
        let meta = f.metadata().map_err(|source| BundleError::Read { path: path.clone(), source })?;
        if !meta.is_file() {
            w.skipped.push(path);
            continue;
        }
        // The size read now: a log still growing is taken as it is at this moment.
        let len = meta.len();
        if len > limits.member_bytes || w.raw_bytes + len > limits.total_bytes / 2 {
            return Err(BundleError::Source { path, what: format!("too large for a bundle ({len} bytes; at most {} per file)", limits.member_bytes) });
        }
        w.raw_bytes += len;
        append(&mut tar, &name, &mut f.take(len), len, meta.mode() & 0o111 != 0).map_err(|source| BundleError::Read { path: path.clone(), source })?;
    }
    let gz = tar.into_inner().map_err(werr)?;
    let mut buf = gz.finish().map_err(werr)?;
    buf.flush().map_err(werr)?;
    buf.into_inner().map_err(|e| werr(e.into_error()))?.sync_all().map_err(werr)?;
    Ok(())
}

fn append<W: Write>(tar: &mut tar::Builder<W>, name: &str, data: &mut dyn Read, len: u64, executable: bool) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(len);
    h.set_mode(if executable { 0o700 } else { 0o600 });
    h.set_mtime(0);
    // A file that shrank since its size was read would leave the archive short: pad it.
    let mut data = data.chain(io::repeat(0)).take(len);
    tar.append_data(&mut h, name, &mut data)
}

/// Every regular file below `dir` (relative paths), hidden ones only when `hidden`, without
/// following links; links and special files go to `skipped`.
fn collect(dir: &Path, rel: &Path, hidden: bool, out: &mut Vec<(PathBuf, PathBuf)>, skipped: &mut Vec<PathBuf>) -> Result<(), BundleError> {
    let here = dir.join(rel);
    let rd = std::fs::read_dir(&here).map_err(|source| BundleError::Read { path: here.clone(), source })?;
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let Ok(t) = e.file_type() else { continue };
        // Hidden entries of a scenario folder (.git, editor files) are not its files, as
        // discovery skips them.
        if !hidden && e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let r = rel.join(e.file_name());
        if t.is_dir() {
            collect(dir, &r, hidden, out, skipped)?;
        } else if t.is_file() {
            out.push((e.path(), r));
        } else {
            skipped.push(e.path());
        }
    }
    Ok(())
}

/// The trial's outcome and reason from its results.json: as recorded there, or for one
/// written before nslab recorded it, passed when every expectation held.
fn outcome_of(results: Option<&Value>) -> (Outcome, Option<String>) {
    let Some(r) = results else { return (Outcome::Failed, Some("results.json is missing from the artifacts".into())) };
    let reason = r.get("reason").and_then(Value::as_str).map(String::from);
    if let Some(o) = r.get("outcome").and_then(|o| serde_json::from_value::<Outcome>(o.clone()).ok()) {
        return (o, reason);
    }
    let all = r.get("expectations").and_then(Value::as_array).is_some_and(|e| e.iter().all(|x| x.get("passed").and_then(Value::as_bool) == Some(true)));
    (if all { Outcome::Passed } else { Outcome::Failed }, reason)
}
