//! Process identities that survive pid reuse: the owner markers of artifact directories and the
//! anchors of live labs name processes this way.

use serde::{Deserialize, Serialize};

/// A process identity that survives pid reuse: its pid and its start time (clock ticks after
/// boot, field 22 of /proc/PID/stat).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcId {
    /// Process id.
    pub pid: u32,
    /// Start time, in clock ticks after boot.
    pub start: u64,
}

impl ProcId {
    /// The identity of process `pid` now, if it exists.
    pub fn of(pid: u32) -> Option<ProcId> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) may hold spaces and parentheses: fields count from its end.
        let rest = &stat[stat.rfind(')')? + 1..];
        let start = rest.split_whitespace().nth(19)?.parse().ok()?;
        Some(ProcId { pid, start })
    }

    /// Whether this very process is still alive (not a zombie, not a new process with its pid).
    pub fn alive(&self) -> bool {
        let zombie = std::fs::read_to_string(format!("/proc/{}/stat", self.pid))
            .ok()
            .and_then(|s| s.rfind(')').map(|i| s[i + 1..].trim_start().starts_with('Z')))
            .unwrap_or(true);
        !zombie && ProcId::of(self.pid) == Some(*self)
    }
}
