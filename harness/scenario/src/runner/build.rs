//! Scenario builds (`[build.<name>]`): each runs once per cache key, in a lab host of its own,
//! before the trial's lab exists (so never in its clock or its warp), its output kept under
//! `<artifacts root>/.build/<key>/` for every later trial and run.
//!
//! The key is a SHA-256 over nslab's version, the command as rendered (with `{{out}}` left as
//! written), each input's path and contents, and the program's resolved path, size and
//! modification time (a compiler upgrade rebuilds). A build writes into a fresh directory of the
//! cache, which is renamed to its key only when the build succeeded: a reader never sees a
//! half-written output, and a failed build leaves no entry (its log is kept with its lab's
//! artifacts). Trials of one process that need the same key wait for the one build.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::scenario::{BuildDef, Template, TemplateContext, Var};
use nslab::addr::profile::Profile;
use nslab::host::process::Command;
use nslab::os::fsafe::Dir;

/// The cache's folder in the artifacts root.
pub const CACHE_DIR: &str = ".build";

/// The host a build runs in, in a lab of its own.
const BUILD_HOST: &str = "build";

/// Why a build gave no output: the message names the build and where its log is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("build {build}: {why}")]
pub struct BuildError {
    /// The build's name.
    pub build: String,
    /// What happened, with the path of its kept log when it ran.
    pub why: String,
}

/// The outcome of one build key in this process, shared by the trials that wait for it.
type Slot = Arc<OnceCell<Result<PathBuf, String>>>;

/// One slot per cache directory: trials of this process that need the same key wait for the
/// one build (and learn its failure, without building again).
static SLOTS: LazyLock<Mutex<HashMap<PathBuf, Slot>>> = LazyLock::new(Default::default);

/// What the template of a build's command sees: the scenario's folder, and `{{out}}`.
struct BuildContext<'a> {
    scenario_dir: &'a Path,
    /// `None`: `{{out}}` stays as written (for the cache key).
    out: Option<&'a Path>,
}

impl TemplateContext for BuildContext<'_> {
    fn profile(&self) -> Profile {
        Profile::DualStack
    }

    fn value(&self, var: &Var) -> Option<String> {
        match var {
            Var::ScenarioDir => Some(self.scenario_dir.display().to_string()),
            Var::Out => Some(self.out.map_or_else(|| "{{out}}".to_string(), |p| p.display().to_string())),
            _ => None,
        }
    }
}

fn render(def: &BuildDef, scenario_dir: &Path, out: Option<&Path>) -> Result<Vec<String>, String> {
    let ctx = BuildContext { scenario_dir, out };
    def.command.iter().map(|t: &Template| t.render(&ctx).map_err(|e| e.to_string())).collect()
}

/// The program `name` as the build will run it: a path as given, or the first match on PATH;
/// then every link resolved.
fn resolve_program(name: &str) -> Result<PathBuf, String> {
    let found = if name.contains('/') {
        Some(PathBuf::from(name))
    } else {
        std::env::var_os("PATH").and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|c| c.is_file()))
    };
    let found = found.ok_or_else(|| format!("the program {name:?} is not on PATH; expected it installed (see the scenario's [requires])"))?;
    std::fs::canonicalize(&found).map_err(|e| format!("the program {} cannot be examined ({e})", found.display()))
}

/// Feeds one field, length first, so no two different lists of fields hash alike.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The cache key of `def` for a scenario in `scenario_dir`, as 64 hex digits.
///
/// # Errors
/// A program that cannot be found or examined, an input that cannot be read.
pub fn cache_key(def: &BuildDef, scenario_dir: &Path) -> Result<String, String> {
    let argv = render(def, scenario_dir, None)?;
    let mut h = Sha256::new();
    field(&mut h, b"nslab build 1");
    field(&mut h, env!("CARGO_PKG_VERSION").as_bytes());
    h.update((argv.len() as u64).to_le_bytes());
    for a in &argv {
        field(&mut h, a.as_bytes());
    }
    h.update((def.inputs.len() as u64).to_le_bytes());
    for i in &def.inputs {
        let bytes = std::fs::read(&i.source).map_err(|e| format!("its input {} cannot be read ({e})", i.source.display()))?;
        field(&mut h, i.path.as_os_str().as_encoded_bytes());
        field(&mut h, &bytes);
    }
    let program = resolve_program(&argv[0])?;
    let m = std::fs::metadata(&program).map_err(|e| format!("the program {} cannot be examined ({e})", program.display()))?;
    field(&mut h, program.as_os_str().as_encoded_bytes());
    h.update(m.size().to_le_bytes());
    h.update(m.mtime().to_le_bytes());
    h.update(m.mtime_nsec().to_le_bytes());
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Where a trial's builds put their labs (and so their logs): `<trial root>/build`.
pub(crate) struct Builder<'a> {
    /// The artifacts root; the cache is its `.build` folder.
    pub(crate) root: &'a Path,
    /// Where a build's lab (its log) goes.
    pub(crate) logs: PathBuf,
    /// The scenario's folder (canonical), shared with the build's host.
    pub(crate) scenario_dir: &'a Path,
}

impl Builder<'_> {
    /// The output directory of `def`: from the cache, or built now (once per key in this
    /// process, whoever asks at the same time).
    ///
    /// # Errors
    /// [`BuildError`] with the reason and, when it ran, where its log is.
    pub(crate) async fn output(&self, def: &BuildDef) -> Result<PathBuf, BuildError> {
        let fail = |why: String| BuildError { build: def.name.clone(), why };
        let key = cache_key(def, self.scenario_dir).map_err(fail)?;
        let cache = nslab::os::fsafe::artifact_dir(self.root).and_then(|r| r.subdir(CACHE_DIR)).map_err(|e| fail(format!("its cache cannot be used ({e})")))?;
        owner_only(&cache).map_err(fail)?;
        let dir = cache.path().join(&key);
        let slot = SLOTS.lock().unwrap_or_else(|e| e.into_inner()).entry(dir.clone()).or_default().clone();
        let out = slot.get_or_init(|| async { self.cached_or_build(def, &cache, &key).await }).await;
        out.clone().map_err(fail)
    }

    async fn cached_or_build(&self, def: &BuildDef, cache: &Dir, key: &str) -> Result<PathBuf, String> {
        if let Some(dir) = existing(cache, key)? {
            tracing::debug!(build = %def.name, dir = %dir.display(), "build output from the cache");
            return Ok(dir);
        }
        // A fresh directory (random name, 0700) beside the entry: renamed to it on success.
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".tmp-{}-", &key[..16]))
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(cache.path())
            .map_err(|e| format!("no directory for its output in {} ({e})", cache.path().display()))?;
        // Its owner's mark, so `nslab gc` removes it if this process dies before it is moved
        // (dropped, as when the trial is cancelled, it goes at once).
        let me = nslab::os::procid::ProcId::of(std::process::id()).map(|p| serde_json::to_vec(&p).unwrap_or_default()).unwrap_or_default();
        let marked = nslab::os::fsafe::artifact_dir(tmp.path()).and_then(|d| d.write_file(nslab::os::fsafe::LIVE_MARKER, &me, 0o600));
        marked.map_err(|e| format!("cannot mark its output directory as this run's ({e})"))?;
        let started = std::time::Instant::now();
        self.run(def, tmp.path()).await?;
        nslab::os::artifacts::release(tmp.path());
        let name = tmp.path().file_name().expect("a temporary directory has a name").to_os_string();
        let tmp_path = tmp.keep();
        match nix::fcntl::renameat(cache.fd(), name.as_os_str(), cache.fd(), key) {
            Ok(()) => {}
            // Another nslab process built the same key meanwhile: its output is as good.
            Err(Errno::EEXIST | Errno::ENOTEMPTY) => {
                let _ = std::fs::remove_dir_all(&tmp_path);
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp_path);
                return Err(format!("its output cannot be moved into the cache ({e})"));
            }
        }
        tracing::info!(build = %def.name, took = ?started.elapsed(), key, "built");
        existing(cache, key)?.ok_or_else(|| format!("its output vanished from the cache at {}", cache.path().join(key).display()))
    }

    /// Runs the build in a one-host lab, its output directory `out` shared with the host at its
    /// own path (and its working directory), never in scaled time.
    async fn run(&self, def: &BuildDef, out: &Path) -> Result<(), String> {
        let argv = render(def, self.scenario_dir, Some(out))?;
        nslab::os::fsafe::artifact_dir(&self.logs).map_err(|e| format!("no directory for its log ({e})"))?;
        let lab = nslab::Lab::builder()
            .host(BUILD_HOST)
            .dns_tap(false)
            .share_with_hosts(self.scenario_dir.to_path_buf())
            .share_with_hosts(out.to_path_buf())
            .artifacts_in(self.logs.clone())
            .artifacts_base(self.root.to_path_buf())
            .build()
            .await
            .map_err(|e| format!("its lab could not be built ({})", nslab::error::chain(&e)))?;
        let result = async {
            let host = lab.host(BUILD_HOST).map_err(|e| e.to_string())?;
            let (prog, args) = argv.split_first().expect("a build's command is not empty");
            let cmd = Command::new(prog).args(args).current_dir(out).name(format!("build-{}", def.name));
            let p = host.spawn(cmd).await.map_err(|e| format!("cannot start {prog:?} ({})", nslab::error::chain(&e)))?;
            let log = || format!("its output is kept in {} and {}", p.stdout_path().display(), p.stderr_path().display());
            match p.wait_exit(def.timeout).await {
                Ok(e) if e.success() => Ok(()),
                Ok(e) => Err(format!("{prog} failed ({e}); {}", log())),
                Err(_) => {
                    p.kill().await;
                    Err(format!("{prog} did not finish within its timeout of {:?} and was killed; {}", def.timeout, log()))
                }
            }
        }
        .await;
        if result.is_err() {
            lab.keep_artifacts();
        }
        if let Err(e) = lab.teardown().await {
            tracing::warn!(build = %def.name, error = %e, "the build's lab did not tear down cleanly");
        }
        result
    }
}

/// The entry `key` of the cache, if it exists: a real directory of the caller's, owner-only.
fn existing(cache: &Dir, key: &str) -> Result<Option<PathBuf>, String> {
    let path = cache.path().join(key);
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match nix::fcntl::openat(cache.fd(), key, flags, Mode::empty()) {
        Ok(fd) => {
            let st = nix::sys::stat::fstat(&fd).map_err(|e| format!("its cached output {} cannot be examined ({e})", path.display()))?;
            if st.st_uid != nix::unistd::geteuid().as_raw() || st.st_mode & 0o077 != 0 {
                return Err(format!(
                    "its cached output {} is not the caller's own owner-only directory (uid {}, mode {:o}); expected one nslab made: remove it",
                    path.display(),
                    st.st_uid,
                    st.st_mode & 0o7777
                ));
            }
            Ok(Some(path))
        }
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(format!("its cached output {} is not a directory nslab made ({e}); expected a directory: remove it", path.display())),
    }
}

/// Refuses a cache folder others may write to or read.
fn owner_only(dir: &Dir) -> Result<(), String> {
    let st = nix::sys::stat::fstat(dir.fd()).map_err(|e| format!("its cache {} cannot be examined ({e})", dir.path().display()))?;
    if st.st_mode & 0o077 != 0 {
        return Err(format!("its cache {} has mode {:o}; expected an owner-only directory (0700)", dir.path().display(), st.st_mode & 0o7777));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(dir: &Path, command: &str) -> crate::scenario::Scenario {
        let text = format!("description = \"d\"\n[hosts.a]\n[build.c]\ncommand = {command}\ninputs = [\"A.java\"]\n");
        crate::scenario::parse_str(&dir.join("s.toml"), &text).unwrap()
    }

    #[test]
    fn the_key_follows_inputs_and_command_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("A.java"), "class A {}").unwrap();
        let s = scenario(dir.path(), "[\"sh\", \"-c\", \"cp {{scenario_dir}}/A.java {{out}}\"]");
        let key = |s: &crate::scenario::Scenario| cache_key(&s.builds[0], dir.path()).unwrap();
        let first = key(&s);
        assert_eq!(first.len(), 64);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(key(&s), first, "the same build, the same inputs: the same key");
        std::fs::write(dir.path().join("A.java"), "class A { }").unwrap();
        let changed = key(&s);
        assert_ne!(changed, first, "an input's content is in the key");
        std::fs::write(dir.path().join("A.java"), "class A {}").unwrap();
        assert_eq!(key(&s), first, "the content, not the file's times");
        let other = scenario(dir.path(), "[\"sh\", \"-c\", \"cp {{scenario_dir}}/A.java {{out}}/\"]");
        assert_ne!(key(&other), first, "the command is in the key");
        let moved = tempfile::tempdir().unwrap();
        std::fs::write(moved.path().join("A.java"), "class A {}").unwrap();
        assert_ne!(cache_key(&s.builds[0], moved.path()).unwrap(), first, "the rendered {{scenario_dir}} is in the key");
    }

    #[test]
    fn the_program_is_in_the_key() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("A.java"), "x").unwrap();
        let prog = dir.path().join("prog");
        std::fs::write(&prog, "#!/bin/sh\n").unwrap();
        let s = scenario(dir.path(), &format!("[\"{}\"]", prog.display()));
        let first = cache_key(&s.builds[0], dir.path()).unwrap();
        std::fs::write(&prog, "#!/bin/sh\ntrue\n").unwrap();
        assert_ne!(cache_key(&s.builds[0], dir.path()).unwrap(), first, "an upgraded program (size, mtime) rebuilds");
        let missing = scenario(dir.path(), "[\"no-such-program-here\"]");
        assert_eq!(
            cache_key(&missing.builds[0], dir.path()).unwrap_err(),
            "the program \"no-such-program-here\" is not on PATH; expected it installed (see the scenario's [requires])"
        );
        // Its trials are ignored (failed under NSLAB_REQUIRE_ALL) with the reason, as for [requires].
        assert_eq!(
            crate::runner::requirements::unmet_for(&missing).as_deref(),
            Some("requirement not met: no-such-program-here is not installed (build c runs it)")
        );
    }
}
