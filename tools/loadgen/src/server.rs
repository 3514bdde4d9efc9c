//! A server under test, run as a child process: started on a free port,
//! watched through `/proc`, and never left behind.
//!
//! The server runs in a process group of its own, so that whatever it
//! forks (workers, say) can be found, measured and killed along with it.

use std::fs;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::{Pid, SysconfVar, sysconf};

/// How long a server gets to say where it listens.
const STARTUP: Duration = Duration::from_secs(10);

/// The most we read looking for that first line.
const LINE_LIMIT: usize = 4096;

/// A running server. Dropping it kills its whole process group.
#[derive(Debug)]
pub struct Server {
    child: Child,
    addr: SocketAddr,
    /// `stop` saw it exit by itself: leave what remains of its group for the
    /// caller to find with [`group_members`].
    stopped: bool,
}

/// What a server's process group holds at one moment: see
/// [`Server::holdings`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// Live processes of the group, the server included, by pid.
    pub processes: Vec<u32>,
    pub threads: usize,
    pub fds: usize,
}

/// How a server ended.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    pub status: ExitStatus,
    /// It did not exit within the grace period and was SIGKILLed, with its group.
    pub killed: bool,
    /// From SIGTERM to its exit.
    pub after: Duration,
}

impl Server {
    /// Runs `program 127.0.0.1:0 extra_args...` and waits for its first
    /// line of output, which must be `listening on http://ADDR`.
    pub fn start(program: &Path, extra_args: &[&str]) -> io::Result<Server> {
        Server::start_limited(program, extra_args, None)
    }

    /// Like [`Server::start`], with the server's limit on open file
    /// descriptors (`RLIMIT_NOFILE`, what `ulimit -n` shows) lowered to
    /// `max_fds` if given: to see what it does when it runs out.
    pub fn start_limited(
        program: &Path,
        extra_args: &[&str],
        max_fds: Option<u64>,
    ) -> io::Result<Server> {
        let mut command = Command::new(program);
        if let Some(max) = max_fds {
            // SAFETY: runs in the child between fork and exec, where only
            // async-signal-safe calls are allowed: setrlimit is a plain
            // system call, and nothing here allocates or takes a lock.
            unsafe {
                command.pre_exec(move || {
                    setrlimit(Resource::RLIMIT_NOFILE, max, max).map_err(io::Error::from)
                });
            }
        }
        let mut child = command
            .arg("127.0.0.1:0")
            .args(extra_args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot run {}: {e}", program.display()))
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stopped: false,
        };
        // From here on an early return drops `server`, which kills it.

        // A thread reads the server's output for as long as there is any,
        // so the server never blocks on a full pipe. It hands what it reads
        // to us until we hang up, then throws it away.
        let (chunks, received) = mpsc::channel();
        thread::spawn(move || drain(stdout, chunks));

        let deadline = Instant::now() + STARTUP;
        let mut got = Vec::new();
        let problem = loop {
            if let Some(end) = got.iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&got[..end]);
                match line.strip_prefix("listening on http://").map(str::parse) {
                    Some(Ok(addr)) => {
                        server.addr = addr;
                        return Ok(server);
                    }
                    _ => break "its first line is not `listening on http://ADDR`",
                }
            }
            if got.len() > LINE_LIMIT {
                break "its first line is too long";
            }
            match received.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(chunk) => got.extend_from_slice(&chunk),
                Err(RecvTimeoutError::Timeout) => break "it printed no full line in time",
                Err(RecvTimeoutError::Disconnected) => break "it closed its output",
            }
        };
        // A server that closed its output has likely exited: say how.
        let mut exited = String::new();
        for _ in 0..20 {
            if let Ok(Some(status)) = server.child.try_wait() {
                exited = format!(" and exited ({status})");
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        Err(io::Error::other(format!(
            "{}: {problem}{exited}; read {:?}",
            program.display(),
            String::from_utf8_lossy(&got)
        )))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user plus system) of the server, of every process in its
    /// group (its workers), and of the children they have reaped.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        group_cpu_time(self.pid())
    }

    /// How long the threads of the server's group have been running or
    /// ready to run (waiting for a CPU), summed: from each thread's
    /// `/proc/PID/task/TID/schedstat`. Unlike CPU time, this does not depend
    /// on how busy the machine is: a thread that never blocks adds a second
    /// every second, whether it gets a CPU or not. Threads that have ended
    /// are not counted.
    pub fn busy_time(&self) -> io::Result<Duration> {
        let mut nanos: u64 = 0;
        for pid in self.group_pids() {
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
                // Time on a CPU, time waiting for one, in nanoseconds; then
                // how many times it ran.
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

    /// Live processes in the server's group, the server included.
    pub fn group_pids(&self) -> Vec<u32> {
        group_members(self.pid())
    }

    /// Children of the server that have exited but not been reaped.
    pub fn zombies(&self) -> Vec<u32> {
        processes()
            .filter(|(_, p)| p.ppid == self.pid() && p.state == 'Z')
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Threads of the server process.
    pub fn threads(&self) -> io::Result<usize> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| io::Error::other("no Threads: line in /proc/PID/status"))
    }

    /// Open file descriptors of the server process.
    pub fn open_fds(&self) -> io::Result<usize> {
        Ok(fs::read_dir(format!("/proc/{}/fd", self.pid()))?.count())
    }

    /// What the server's whole process group holds: its live processes,
    /// and their threads and open file descriptors, summed. Processes
    /// vanish as we look; those are simply not counted.
    pub fn holdings(&self) -> Holdings {
        let mut held = Holdings::default();
        for pid in self.group_pids() {
            let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
                continue;
            };
            let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else {
                continue;
            };
            let threads = status
                .lines()
                .find_map(|line| line.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(0);
            held.processes.push(pid);
            held.threads += threads;
            held.fds += fds.count();
        }
        held.processes.sort_unstable();
        held
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Asks the server to stop with SIGTERM and waits up to `grace` for it
    /// to exit; then SIGKILLs its whole group. A server that exits by itself
    /// is expected to have taken its workers with it: whatever of its group
    /// is left is not killed here, so [`group_members`] can show it.
    pub fn stop(mut self, grace: Duration) -> io::Result<Stopped> {
        let start = Instant::now();
        // Not if it has exited and been reaped: its pid may be another's now.
        if self.child.try_wait()?.is_none() {
            kill(self.nix_pid(), Signal::SIGTERM)?;
        }
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.stopped = true;
                let after = start.elapsed();
                return Ok(Stopped {
                    status,
                    killed: false,
                    after,
                });
            }
            if start.elapsed() >= grace {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let status = self.kill()?;
        self.stopped = true;
        Ok(Stopped {
            status,
            killed: true,
            after: start.elapsed(),
        })
    }

    fn nix_pid(&self) -> Pid {
        Pid::from_raw(self.pid() as i32)
    }

    /// SIGKILLs the whole group and reaps the server. A process group
    /// outlives its leader, so this reaches the workers of a server that has
    /// already exited, too.
    fn kill(&mut self) -> io::Result<ExitStatus> {
        let _ = killpg(self.nix_pid(), Signal::SIGKILL);
        let status = self.child.wait()?;
        // The signal is sent, but dying takes a moment: wait for it, briefly.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !group_members(self.pid()).is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        Ok(status)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.kill();
        }
    }
}

/// Reads `out` to its end, sending each chunk to whoever still listens.
fn drain(mut out: impl Read, chunks: mpsc::Sender<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    loop {
        match out.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                // Once `start` is done, nobody listens; that is fine.
                let _ = chunks.send(buf[..n].to_vec());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
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

/// Live (not zombie) processes in process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    processes()
        .filter(|(_, p)| p.pgrp == pgid && !matches!(p.state, 'Z' | 'X'))
        .map(|(pid, _)| pid)
        .collect()
}

/// What we use of `/proc/PID/stat`.
#[derive(Debug, Clone, Copy)]
struct Stat {
    state: char,
    ppid: u32,
    pgrp: u32,
    /// utime + stime + cutime + cstime, in clock ticks.
    cpu_ticks: u64,
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
    })
}

/// Every process we can see, with its stat. Processes vanish as we look:
/// those simply do not appear.
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
    }

    #[test]
    fn this_process_is_visible() {
        let me = std::process::id();
        let stat = stat(me).unwrap();
        assert!(group_members(stat.pgrp).contains(&me));
    }

    /// A shell script as the server: `$1` is the address it was given.
    fn script(name: &str, body: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("loadgen-{}-{name}.sh", std::process::id()));
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Starts a script just written. Another test thread may fork while the
    /// script is still open for writing, and its child hold it open for a
    /// moment: exec fails with "text file busy" until that child execs.
    fn start_script(path: &Path) -> Server {
        for _ in 0..100 {
            match Server::start(path, &[]) {
                Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy => {
                    thread::sleep(Duration::from_millis(10));
                }
                started => return started.unwrap(),
            }
        }
        panic!("{} stayed busy", path.display());
    }

    #[test]
    fn start_watch_and_stop() {
        let path = script("polite", "echo \"listening on http://$1\"\nexec sleep 30");
        let mut server = start_script(&path);
        assert_eq!(server.url(), "http://127.0.0.1:0/");
        assert!(server.is_running());
        assert_eq!(server.group_pids(), vec![server.pid()]);
        assert_eq!(server.threads().unwrap(), 1);
        assert!(server.open_fds().unwrap() >= 3);
        let held = server.holdings();
        assert_eq!(held.processes, vec![server.pid()]);
        assert_eq!(held.threads, 1);
        assert!(held.fds >= 3, "{held:?}");
        assert!(server.cpu_time().unwrap() < Duration::from_secs(1));
        assert!(server.busy_time().unwrap() < Duration::from_secs(1));
        assert!(server.zombies().is_empty());
        let stopped = server.stop(Duration::from_secs(5)).unwrap();
        assert!(!stopped.killed, "{stopped:?}");
        fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_lower_descriptor_limit() {
        let path = script(
            "limited",
            "echo \"listening on http://$1 $(ulimit -n)\"\nexec sleep 30",
        );
        for _ in 0..100 {
            match Server::start_limited(&path, &[], Some(64)) {
                Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy => {
                    thread::sleep(Duration::from_millis(10));
                }
                // The line does not parse as an address: its text says why.
                started => {
                    let err = started.unwrap_err().to_string();
                    assert!(err.contains("127.0.0.1:0 64"), "{err}");
                    break;
                }
            }
        }
        fs::remove_file(path).unwrap();
    }

    #[test]
    fn stubborn_servers_and_their_workers_are_killed() {
        // Ignores SIGTERM, and so does the worker it starts.
        let body = "trap '' TERM\nsleep 30 &\necho \"listening on http://$1\"\nwait";
        let path = script("stubborn", body);
        let server = start_script(&path);
        let pid = server.pid();
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.group_pids().len() < 2 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(server.group_pids().len(), 2);
        let stopped = server.stop(Duration::from_millis(100)).unwrap();
        assert!(stopped.killed, "{stopped:?}");
        assert!(group_members(pid).is_empty());

        // Dropped without stop: the same.
        let server = start_script(&path);
        let pid = server.pid();
        drop(server);
        assert!(group_members(pid).is_empty());
        fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_program_that_does_not_announce_itself() {
        let err = Server::start(Path::new("/bin/echo"), &["hello"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("127.0.0.1:0 hello"), "{text}");
        assert!(text.contains("not `listening on"), "{text}");
        let err = Server::start(Path::new("/nonexistent/server"), &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }
}
