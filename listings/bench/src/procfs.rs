//! What the kernel says about a server: the CPU time and the memory of its
//! whole process group (the server, its workers, and what they reaped), as
//! `/proc` shows them.
//!
//! Every server runs in a process group of its own whose id is the
//! server's pid, so its group is everything it forked.

use std::fs;
use std::io;

use nix::unistd::{SysconfVar, sysconf};

/// What we use of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stat {
    state: char,
    pgrp: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    ticks: u64,
}

/// The command name, in parentheses, may hold anything, ")" included: the
/// fields we want come after its last ")". proc(5) numbers them from 1, the
/// state being field 3.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        pgrp: u32::try_from(field(5)?).ok()?,
        ticks: [14, 15, 16, 17]
            .iter()
            .map(|&n| field(n))
            .sum::<Option<u64>>()?,
    })
}

fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The processes of group `pgid`, zombies included (their time is theirs
/// until their parent reaps them, then the parent's).
fn group(pgid: u32) -> Vec<(u32, Stat)> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .filter(|(_, s)| s.pgrp == pgid)
        .collect()
}

/// Live processes of group `pgid`.
pub fn members(pgid: u32) -> Vec<u32> {
    group(pgid)
        .into_iter()
        .filter(|(_, s)| !matches!(s.state, 'Z' | 'X'))
        .map(|(pid, _)| pid)
        .collect()
}

/// User plus system CPU time, in seconds, of the process group led by
/// `leader`: every member, and the children each has reaped. The kernel
/// counts it in clock ticks (usually 10 ms).
pub fn cpu_time(leader: u32) -> io::Result<f64> {
    let per_sec = sysconf(SysconfVar::CLK_TCK)?
        .filter(|&t| t > 0)
        .unwrap_or(100) as f64;
    let members = group(leader);
    if !members.iter().any(|(pid, _)| *pid == leader) {
        return Err(io::Error::other(format!("process {leader} is gone")));
    }
    let ticks: u64 = members.iter().map(|(_, s)| s.ticks).sum();
    Ok(ticks as f64 / per_sec)
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
    fn stat_lines() {
        let line = "1234 (a) b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 5 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            Stat {
                state: 'S',
                pgrp: 1234,
                ticks: 13
            }
        );
        assert!(parse_stat("1234 (short) S 1").is_none());
    }

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
