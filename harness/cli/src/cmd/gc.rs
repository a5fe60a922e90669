//! `nslab gc`: removes what labs whose daemon died left, and the artifacts of runs that died.

use std::path::Path;
use std::process::ExitCode;

use nslab_cli::live;

use super::exit::fail;

/// Says what it removed (or "nothing to remove"); exit 1 when something could not be removed.
pub(crate) fn gc(root: &Path) -> ExitCode {
    let c = match live::gc(root) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    for l in &c.labs {
        println!("removed the remains of lab {l}");
    }
    for n in &c.netns {
        println!("removed network namespace {n}");
    }
    let mut errors = c.errors;
    // Artifact directories of runs that died (their marker names a process that is gone).
    let art = nslab::lab::spec::default_artifacts_root();
    let (dead, art_errors) = match nslab::os::artifacts::collect_dead(&art) {
        Ok(r) => r,
        Err(e) => (Vec::new(), vec![nslab::error::chain(&e)]),
    };
    errors.extend(art_errors);
    let (mut files, mut bytes) = (0, 0);
    for d in &dead {
        println!("removed the artifacts of a run that died (pid {}): {} ({} files, {} bytes)", d.owner.pid, d.path.display(), d.files, d.bytes);
        files += d.files;
        bytes += d.bytes;
    }
    if !dead.is_empty() {
        println!("artifacts removed: {} directories, {files} files, {bytes} bytes ({:.1} MB) from {}", dead.len(), bytes as f64 / 1e6, art.display());
    }
    for e in &errors {
        eprintln!("nslab: {e}");
    }
    if c.labs.is_empty() && c.netns.is_empty() && dead.is_empty() && errors.is_empty() {
        println!("nothing to remove");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
