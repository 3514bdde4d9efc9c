//! What the kernel says about a process group, as `/proc` shows it: its
//! members, their CPU time, threads, open descriptors and memory.
//!
//! Every server the tests and the benchmark run leads a process group of
//! its own, so its group is everything it forked. Processes come and go
//! as we look: one that vanishes is simply not counted.

use std::fs;
use std::io;
use std::time::Duration;

use nix::unistd::{SysconfVar, sysconf};

/// What a process group holds at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// Live processes of the group, by pid.
    pub processes: Vec<u32>,
    pub threads: usize,
    pub fds: usize,
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

/// Live (not zombie) processes in process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    processes()
        .filter(|(_, p)| p.pgrp == pgid && !matches!(p.state, 'Z' | 'X'))
        .map(|(pid, _)| pid)
        .collect()
}

/// Whether `pid` is still a process of group `pgid`, zombie or not. A pid
/// that the kernel has given to some unrelated process since does not count.
pub fn in_group(pid: u32, pgid: u32) -> bool {
    stat(pid).is_ok_and(|p| p.pgrp == pgid)
}

/// Whether some process traces `pid` (a debugger, `strace`), as the
/// `TracerPid` line of its status says.
pub fn traced(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|status| {
        status
            .lines()
            .any(|l| l.starts_with("TracerPid:") && l.split_whitespace().nth(1) != Some("0"))
    })
}

/// One thread of a process group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thread {
    pub pid: u32,
    pub tid: u32,
    /// Its name (`comm`), as `thread::Builder::name` set it.
    pub name: String,
    /// How often it gave up the CPU to wait: a wake-up each, for a thread
    /// that sleeps in `accept` or `epoll_wait`.
    pub voluntary_switches: u64,
}

/// Every thread of every live process of group `pgid`, by pid and tid.
pub fn group_threads(pgid: u32) -> Vec<Thread> {
    let mut all = Vec::new();
    for pid in group_members(pgid) {
        let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for tid in dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
        {
            let task = format!("/proc/{pid}/task/{tid}");
            let Ok(status) = fs::read_to_string(format!("{task}/status")) else {
                continue; // it ended as we looked
            };
            let switches = status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let name = fs::read_to_string(format!("{task}/comm")).unwrap_or_default();
            all.push(Thread {
                pid,
                tid,
                name: name.trim_end().to_string(),
                voluntary_switches: switches,
            });
        }
    }
    all.sort_unstable_by_key(|t| (t.pid, t.tid));
    all
}

/// Children of `parent` that have exited but not been reaped.
pub fn zombies(parent: u32) -> Vec<u32> {
    processes()
        .filter(|(_, p)| p.ppid == parent && p.state == 'Z')
        .map(|(pid, _)| pid)
        .collect()
}

/// CPU time (user plus system) of the process group led by `leader`: every
/// member, and the children each has reaped. The leader must be there;
/// other members may come and go. The kernel counts in clock ticks
/// (usually 10 ms).
pub fn group_cpu_time(leader: u32) -> io::Result<Duration> {
    let ticks_per_sec = sysconf(SysconfVar::CLK_TCK)?
        .filter(|&t| t > 0)
        .unwrap_or(100) as u64;
    let mut ticks = stat(leader)?.cpu_ticks;
    for (pid, member) in processes() {
        if member.pgrp == leader && pid != leader {
            ticks += member.cpu_ticks;
        }
    }
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(ticks_per_sec);
    Ok(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

/// The part of [`group_cpu_time`] spent in the kernel (system time): the
/// system calls, and what the kernel does for the group (its io_uring
/// threads' work included, since they are threads of the process).
pub fn group_system_time(leader: u32) -> io::Result<Duration> {
    let ticks_per_sec = sysconf(SysconfVar::CLK_TCK)?
        .filter(|&t| t > 0)
        .unwrap_or(100) as u64;
    let mut ticks = stat(leader)?.system_ticks;
    for (pid, member) in processes() {
        if member.pgrp == leader && pid != leader {
            ticks += member.system_ticks;
        }
    }
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(ticks_per_sec);
    Ok(Duration::from_nanos(
        u64::try_from(nanos).unwrap_or(u64::MAX),
    ))
}

/// How long the threads of group `pgid` have been running or ready to run
/// (waiting for a CPU), summed: from each thread's
/// `/proc/PID/task/TID/schedstat`. Unlike CPU time, this does not depend on
/// how busy the machine is: a thread that never blocks adds a second every
/// second, whether it gets a CPU or not. Threads that have ended are not
/// counted.
pub fn group_busy_time(pgid: u32) -> io::Result<Duration> {
    let mut nanos: u64 = 0;
    for pid in group_members(pgid) {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let path = task.path().join("schedstat");
            let text = match fs::read_to_string(&path) {
                Ok(text) => text,
                // The thread ended as we looked.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            // Time on a CPU, time waiting for one, in nanoseconds; then how
            // many times it ran.
            let mut fields = text.split_whitespace().map(str::parse::<u64>);
            let (Some(Ok(running)), Some(Ok(waiting))) = (fields.next(), fields.next()) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("unexpected {}: {text:?}", path.display()),
                ));
            };
            nanos += running + waiting;
        }
    }
    Ok(Duration::from_nanos(nanos))
}

/// The threads of process `pid`.
pub fn threads(pid: u32) -> io::Result<usize> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    number_after(&status, "Threads:")
        .map(|n| n as usize)
        .ok_or_else(|| io::Error::other(format!("no Threads: line in /proc/{pid}/status")))
}

/// The open file descriptors of process `pid`, and the direct descriptors
/// of its io_uring instances: see [`open_files`].
pub fn open_fds(pid: u32) -> io::Result<usize> {
    Ok(open_files(pid)?.len())
}

/// What process `pid` holds open, as `/proc/PID/fd` links to it
/// (`socket:[INODE]`, say): its file descriptors, and the direct
/// descriptors of its io_uring instances, sockets the `uring` listing
/// accepts into its ring's own table, which `/proc/PID/fd` cannot show.
/// Each ring's `fdinfo` lists the slots in use, one `N: socket:[...]` line
/// each, between its `UserFiles:` and `UserBufs:` lines.
pub fn open_files(pid: u32) -> io::Result<Vec<String>> {
    let mut files = Vec::new();
    for fd in fs::read_dir(format!("/proc/{pid}/fd"))?.flatten() {
        let Ok(target) = fs::read_link(fd.path()) else {
            continue; // closed meanwhile
        };
        let target = target.to_string_lossy().into_owned();
        if target == "anon_inode:[io_uring]" {
            let name = fd.file_name();
            let info = format!("/proc/{pid}/fdinfo/{}", name.to_string_lossy());
            let info = fs::read_to_string(info).unwrap_or_default();
            let direct = (info.lines())
                .skip_while(|line| !line.starts_with("UserFiles:"))
                .skip(1)
                .take_while(|line| !line.starts_with("UserBufs:"))
                .filter_map(|line| line.trim_start().split_once(": "))
                .filter(|(slot, _)| slot.parse::<u32>().is_ok())
                .map(|(_, file)| file.to_string());
            files.extend(direct);
        }
        files.push(target);
    }
    Ok(files)
}

/// What group `pgid` holds: its live processes, and their threads and open
/// file descriptors, summed.
pub fn holdings(pgid: u32) -> Holdings {
    let mut held = Holdings::default();
    for pid in group_members(pgid) {
        let (Ok(fds), Ok(threads)) = (open_fds(pid), threads(pid)) else {
            continue;
        };
        held.processes.push(pid);
        held.threads += threads;
        held.fds += fds;
    }
    held.processes.sort_unstable();
    held
}

/// The group's memory, from each member's `smaps_rollup`; `None` if no
/// member could be read.
pub fn usage(pgid: u32) -> Option<Usage> {
    let mut total = Usage::default();
    for pid in group_members(pgid) {
        let Ok(rollup) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
            continue;
        };
        let Some(pss_kb) = number_after(&rollup, "Pss:") else {
            continue;
        };
        total.pss += pss_kb * 1024;
        total.processes += 1;
        total.threads += threads(pid).map_or(1, |n| n as u64);
    }
    (total.processes > 0).then_some(total)
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

/// What we use of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy)]
struct Stat {
    state: char,
    ppid: u32,
    pgrp: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    cpu_ticks: u64,
    /// stime + cstime: the part of it in the kernel.
    system_ticks: u64,
}

fn stat(pid: u32) -> io::Result<Stat> {
    let bytes = fs::read(format!("/proc/{pid}/stat"))?;
    parse_stat(&String::from_utf8_lossy(&bytes)).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected /proc/{pid}/stat"),
        )
    })
}

/// The command name, in parentheses, may hold anything, ")" included: the
/// fields we want come after its last ")". proc(5) numbers them from 1, the
/// state being field 3.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    let ticks = [14, 15, 16, 17].iter().map(|&n| field(n));
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: u32::try_from(field(4)?).ok()?,
        pgrp: u32::try_from(field(5)?).ok()?,
        cpu_ticks: ticks.sum::<Option<u64>>()?,
        system_ticks: field(15)? + field(17)?,
    })
}

/// Every process we can see, with its stat.
fn processes() -> impl Iterator<Item = (u32, Stat)> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, stat(pid).ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let line = "1234 (a) b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 5 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            (stat.state, stat.ppid, stat.pgrp, stat.cpu_ticks),
            ('S', 1, 1234, 13)
        );
        assert!(parse_stat("1234 (short) S 1").is_none());
        assert_eq!(number_after("Pss:   1234 kB\n", "Pss:"), Some(1234));
    }

    #[test]
    fn this_process_group() {
        let me = std::process::id();
        let pgid = nix::unistd::getpgrp().as_raw() as u32;
        assert!(group_members(pgid).contains(&me));
        assert!(holdings(pgid).processes.contains(&me));
        assert!(threads(me).unwrap() >= 1);
        assert!(open_fds(me).unwrap() >= 3);
        let usage = usage(pgid).expect("our own smaps_rollup");
        assert!(usage.pss > 0 && usage.threads >= 1, "{usage:?}");
    }
}
