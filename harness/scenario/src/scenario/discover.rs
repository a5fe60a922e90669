//! Finding scenario files below a folder, without ever leaving it.
//!
//! A folder is walked through its real directories; a symbolic link is followed only when it
//! resolves inside the folder (the folder's own real path, so a folder given through a link
//! works), and then each file and directory is visited once, whichever way it is reached. A link
//! that leads back to a directory containing it is a loop and an error naming the link; a link
//! named like a scenario (`*.toml`) that leads outside the folder is an error too (it would be
//! silently missing otherwise); any other link that leads outside (a `files/` entry pointing at
//! `/usr/bin/python3`, or at `/`) is not followed. Every error names the path it is about.

use std::collections::{BTreeSet, VecDeque};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nslab::addr::profile::Profile;

/// A path below a scenario folder that discovery cannot use. `Display` is `PATH: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct DiscoverError {
    /// The file, folder or link the problem is about, as reached from the path given.
    pub path: PathBuf,
    /// What was found and what was expected.
    pub message: String,
}

impl DiscoverError {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        Self { path: path.to_path_buf(), message: message.into() }
    }

    fn io(path: &Path, what: &str, e: &io::Error) -> Self {
        Self::new(path, format!("cannot read {what} ({e})"))
    }
}

/// A scenario file found by [`discover`], with the base name of its trials.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScenarioFile {
    /// Base name: the path below the `scenarios` folder without `.toml` (`stale-dns/jvm-default`),
    /// or `<folder>/<file>` for a file outside any `scenarios` folder.
    pub name: String,
    /// The file.
    pub path: PathBuf,
}

impl ScenarioFile {
    /// A file's entry, named as described at [`ScenarioFile::name`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self { name: scenario_name(&path), path }
    }

    /// The name of its trial in `profile`: `stale-dns/jvm-default/dual-stack`.
    pub fn trial_name(&self, profile: Profile) -> String {
        format!("{}/{}", self.name, profile.name())
    }
}

fn scenario_name(path: &Path) -> String {
    let stem = path.with_extension("");
    let base = stem.ancestors().skip(1).find(|a| a.file_name().is_some_and(|n| n == "scenarios"));
    let rel = match base {
        Some(b) => stem.strip_prefix(b).map(Path::to_path_buf).unwrap_or(stem.clone()),
        None => {
            let folder = stem.parent().and_then(Path::file_name).map(PathBuf::from).unwrap_or_default();
            folder.join(stem.file_name().unwrap_or_default())
        }
    };
    rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

/// Lists the scenario files at `root`: the file itself, or every `*.toml` below the folder
/// (hidden entries and any `invalid/` folder below it skipped), sorted by name. Symbolic links
/// are followed only inside the folder, each file is listed once (by the first path that
/// reaches it without a link, else the first link in name order).
///
/// # Errors
/// A [`DiscoverError`] naming the path: a folder or entry that cannot be read, a link that
/// cannot be resolved, a link that loops back to a folder containing it, or a `*.toml` link
/// that leads outside the folder.
pub fn discover(root: &Path) -> Result<Vec<ScenarioFile>, DiscoverError> {
    let meta = std::fs::metadata(root).map_err(|e| DiscoverError::io(root, "the path", &e))?;
    if !meta.is_dir() {
        return Ok(vec![ScenarioFile::new(root)]);
    }
    let real_root = root.canonicalize().map_err(|e| DiscoverError::io(root, "the folder", &e))?;
    let mut w = Walk { real_root, seen: BTreeSet::new(), files: Vec::new(), links: VecDeque::new() };
    w.seen.insert((meta.dev(), meta.ino()));
    // Real directories first, so a file reached both ways keeps its own name; then the links,
    // in the order found (walking a linked directory may queue further links).
    w.dir(root)?;
    while let Some(link) = w.links.pop_front() {
        w.link(&link)?;
    }
    w.files.sort();
    Ok(w.files)
}

struct Walk {
    real_root: PathBuf,
    /// (device, inode) of every directory and scenario file already taken.
    seen: BTreeSet<(u64, u64)>,
    files: Vec<ScenarioFile>,
    links: VecDeque<PathBuf>,
}

impl Walk {
    fn dir(&mut self, dir: &Path) -> Result<(), DiscoverError> {
        let rd = std::fs::read_dir(dir).map_err(|e| DiscoverError::io(dir, "the folder", &e))?;
        let mut entries = Vec::new();
        for e in rd {
            let e = e.map_err(|e| DiscoverError::io(dir, "the folder", &e))?;
            entries.push(e);
        }
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            if name.as_encoded_bytes().starts_with(b".") {
                continue;
            }
            let path = e.path();
            // lstat: the entry itself, never what a link points at.
            let meta = std::fs::symlink_metadata(&path).map_err(|e| DiscoverError::io(&path, "the entry", &e))?;
            let ft = meta.file_type();
            if ft.is_symlink() {
                self.links.push_back(path);
            } else if ft.is_dir() {
                if name != "invalid" && self.seen.insert((meta.dev(), meta.ino())) {
                    self.dir(&path)?;
                }
            } else if is_toml(&path) && ft.is_file() && self.seen.insert((meta.dev(), meta.ino())) {
                self.files.push(ScenarioFile::new(path));
            }
        }
        Ok(())
    }

    fn link(&mut self, link: &Path) -> Result<(), DiscoverError> {
        let target = std::fs::read_link(link).map_err(|e| DiscoverError::io(link, "the symbolic link", &e))?;
        let real =
            link.canonicalize().map_err(|e| DiscoverError::new(link, format!("a symbolic link to {} that cannot be resolved ({e})", target.display())))?;
        if !real.starts_with(&self.real_root) {
            if is_toml(link) {
                return Err(DiscoverError::new(
                    link,
                    format!(
                        "a symbolic link to {}, outside the folder {}; expected scenario files inside the folder given (copy the file, or name it on the command line)",
                        real.display(),
                        self.real_root.display()
                    ),
                ));
            }
            tracing::debug!(link = %link.display(), target = %real.display(), "not following a link out of the scenario folder");
            return Ok(());
        }
        let meta = std::fs::metadata(&real).map_err(|e| DiscoverError::io(link, "the target of the symbolic link", &e))?;
        if meta.is_dir() {
            let parent = link.parent().and_then(|p| p.canonicalize().ok()).unwrap_or_default();
            if parent.starts_with(&real) {
                return Err(DiscoverError::new(
                    link,
                    format!(
                        "a symbolic link to {}, which contains the link itself: a loop; expected a link to a file or to a folder that does not contain it",
                        target.display()
                    ),
                ));
            }
            let skipped = link.file_name().is_some_and(|n| n == "invalid");
            if !skipped && self.seen.insert((meta.dev(), meta.ino())) {
                self.dir(link)?;
            }
        } else if is_toml(link) && meta.is_file() && self.seen.insert((meta.dev(), meta.ino())) {
            self.files.push(ScenarioFile::new(link));
        }
        Ok(())
    }
}

fn is_toml(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "toml")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn names_follow_the_scenarios_folder() {
        assert_eq!(ScenarioFile::new("scenarios/stale-dns/jvm-default.toml").name, "stale-dns/jvm-default");
        assert_eq!(ScenarioFile::new("/w/scenarios/vendor/gunicorn/ll.toml").name, "vendor/gunicorn/ll");
        assert_eq!(ScenarioFile::new("/tmp/mine/x.toml").name, "mine/x");
        assert_eq!(ScenarioFile::new("scenarios/examples/cname-swap.toml").trial_name(Profile::Ipv6Only), "examples/cname-swap/ipv6-only");
    }

    fn names(files: &[ScenarioFile], root: &Path) -> Vec<String> {
        files.iter().map(|f| f.path.strip_prefix(root).unwrap().display().to_string()).collect()
    }

    #[test]
    fn links_inside_are_followed_once_and_real_names_win() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("scenarios");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/one.toml"), "").unwrap();
        std::fs::write(root.join("b.toml"), "").unwrap();
        // Sorted before "a": still, the files keep the names of their real paths.
        symlink("a", root.join("0-alias")).unwrap();
        symlink("b.toml", root.join("0-b.toml")).unwrap();
        let files = discover(&root).unwrap();
        assert_eq!(names(&files, &root), ["a/one.toml", "b.toml"]);
    }

    #[test]
    fn a_link_out_of_the_folder_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("s");
        let elsewhere = d.path().join("elsewhere");
        std::fs::create_dir_all(root.join("files")).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("other.toml"), "").unwrap();
        std::fs::write(root.join("mine.toml"), "").unwrap();
        symlink(&elsewhere, root.join("linked")).unwrap();
        symlink("/", root.join("files/root")).unwrap();
        assert_eq!(names(&discover(&root).unwrap(), &root), ["mine.toml"]);
        // A scenario-named link to elsewhere is an error rather than a silently missing trial.
        symlink(elsewhere.join("other.toml"), root.join("other.toml")).unwrap();
        let e = discover(&root).unwrap_err();
        let real = d.path().canonicalize().unwrap();
        assert_eq!(
            e.to_string(),
            format!(
                "{}/other.toml: a symbolic link to {}/elsewhere/other.toml, outside the folder {}/s; expected scenario files inside the folder given (copy the file, or name it on the command line)",
                root.display(),
                real.display(),
                real.display()
            )
        );
    }

    #[test]
    fn a_loop_is_an_error_naming_the_link() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("s");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/x.toml"), "").unwrap();
        symlink("..", root.join("sub/up")).unwrap();
        let e = discover(&root).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}/sub/up: a symbolic link to .., which contains the link itself: a loop; expected a link to a file or to a folder that does not contain it",
                root.display()
            )
        );
    }

    #[test]
    fn read_errors_name_the_path() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("nope");
        assert_eq!(
            discover(&missing).unwrap_err().to_string(),
            format!("{}: cannot read the path (No such file or directory (os error 2))", missing.display())
        );
        let root = d.path().join("s");
        std::fs::create_dir_all(&root).unwrap();
        symlink("gone", root.join("dangling")).unwrap();
        assert_eq!(
            discover(&root).unwrap_err().to_string(),
            format!("{}/dangling: a symbolic link to gone that cannot be resolved (No such file or directory (os error 2))", root.display())
        );
    }
}
