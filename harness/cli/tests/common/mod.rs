//! What the CLI's test binaries share: trials gated on what the machine has, and `ensure!`.

use libtest_mimic::{Failed, Trial};

/// A trial's result.
pub(crate) type R = Result<(), Failed>;

/// Fails the trial with the message when the condition does not hold.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(libtest_mimic::Failed::from(format!($($fmt)+)));
        }
    };
}
pub(crate) use ensure;

/// A trial that needs something the machine may lack: ignored with the reason printed, failed
/// instead under NSLAB_REQUIRE_ALL.
pub(crate) fn gated(name: &str, missing: Option<String>, f: impl FnOnce() -> R + Send + 'static) -> Trial {
    let require_all = nslab_scenario::runner::requirements::require_all_from_env();
    if let (Some(why), false) = (&missing, require_all) {
        eprintln!("note: {name} is ignored: {why}");
    }
    let ignored = missing.is_some() && !require_all;
    Trial::test(name, move || match missing {
        Some(why) => Err(Failed::from(format!("required: {why}"))),
        None => f(),
    })
    .with_ignored_flag(ignored)
}

/// Why trials that build labs cannot run here: they need CAP_NET_ADMIN and CAP_SYS_ADMIN.
pub(crate) fn kernel_unavailable() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let caps = status.lines().find_map(|l| l.strip_prefix("CapEff:")).and_then(|v| u64::from_str_radix(v.trim(), 16).ok()).unwrap_or(0);
    let need = (1u64 << 12) | (1u64 << 21);
    (caps & need != need).then(|| "needs CAP_NET_ADMIN and CAP_SYS_ADMIN (run as root)".to_string())
}
