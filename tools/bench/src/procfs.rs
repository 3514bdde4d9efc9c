//! What the kernel says about a server: the CPU time and the memory of its
//! whole process group (the server, its workers, and what they reaped), as
//! `/proc` shows them.
//!
//! Every server runs in a process group of its own whose id is the
//! server's pid, so its group is everything it forked.

use std::fs;
use std::io;

/// Live processes of group `pgid`.
pub fn members(pgid: u32) -> Vec<u32> {
    loadgen::server::group_members(pgid)
}

/// User plus system CPU time, in seconds, of the process group led by
/// `leader`: every member, and the children each has reaped.
pub fn cpu_time(leader: u32) -> io::Result<f64> {
    loadgen::server::group_cpu_time(leader).map(|t| t.as_secs_f64())
}

/// Memory and size of a process group at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Proportional set size, summed over the group, in bytes: each page
    /// counted once however many of the group's processes share it.
    pub pss: u64,
    pub threads: u64,
    pub processes: u64,
}

/// The first number on the line of `text` that starts with `label`.
fn number_after(text: &str, label: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(label))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads the group's memory from each member's `smaps_rollup`. `None` if
/// no member could be read.
pub fn usage(leader: u32) -> Option<Usage> {
    let mut total = Usage::default();
    for pid in members(leader) {
        let Ok(rollup) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        let Some(pss_kb) = number_after(&rollup, "Pss:") else {
            continue;
        };
        total.pss += pss_kb * 1024;
        total.processes += 1;
        let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        total.threads += number_after(&status, "Threads:").unwrap_or(1);
    }
    (total.processes > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_group() {
        let me = std::process::id();
        let pgid = nix::unistd::getpgrp().as_raw() as u32;
        assert!(members(pgid).contains(&me));
        let usage = usage(pgid).expect("our own smaps_rollup");
        assert!(usage.pss > 0 && usage.threads >= 1, "{usage:?}");
        assert!(number_after("Pss:   1234 kB\n", "Pss:") == Some(1234));
    }
}
