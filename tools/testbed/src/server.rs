//! A listing under test, run as a child process: started on a free port of
//! 127.0.0.1, in a process group of its own, and watched through `/proc`.

use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{Resource, setrlimit};

use crate::group::{Group, Stopped};
use crate::procfs::{self, Holdings};

/// How long a server gets to say where it listens.
const STARTUP: Duration = Duration::from_secs(10);

/// The most we read looking for that first line.
const LINE_LIMIT: usize = 4096;

/// A running server. Dropping it kills its whole process group.
#[derive(Debug)]
pub struct Server {
    group: Group,
    addr: SocketAddr,
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
        Server::start_with(program, extra_args, max_fds, &[])
    }

    /// Like [`Server::start`], with these environment variables set for
    /// the server (`LISTEN_BACKLOG` for the benchmark's backlog runs,
    /// `TOKIO_WORKER_THREADS` for a test).
    pub fn start_env(
        program: &Path,
        extra_args: &[&str],
        env: &[(&str, &str)],
    ) -> io::Result<Server> {
        Server::start_with(program, extra_args, None, env)
    }

    fn start_with(
        program: &Path,
        extra_args: &[&str],
        max_fds: Option<u64>,
        env: &[(&str, &str)],
    ) -> io::Result<Server> {
        let mut command = Command::new(program);
        command.envs(env.iter().copied());
        if let Some(max) = max_fds {
            // SAFETY: runs in the child between fork and exec, where only
            // async-signal-safe calls are allowed: setrlimit is a plain
            // system call, and nothing here allocates or takes a lock.
            unsafe {
                std::os::unix::process::CommandExt::pre_exec(&mut command, move || {
                    setrlimit(Resource::RLIMIT_NOFILE, max, max).map_err(io::Error::from)
                });
            }
        }
        command
            .arg("127.0.0.1:0")
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut group = Group::spawn(&mut command).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot run {}: {e}", program.display()))
        })?;
        // From here on an early return drops `group`, which kills it.
        let stdout = group.child().stdout.take().expect("stdout is piped");

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
                    Some(Ok(addr)) => return Ok(Server { group, addr }),
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
            if let Ok(Some(status)) = group.try_wait() {
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

    /// The server's pid, which is also its process group's id.
    pub fn pid(&self) -> u32 {
        self.group.pid()
    }

    /// CPU time (user plus system) of the server, of every process in its
    /// group (its workers), and of the children they have reaped.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        procfs::group_cpu_time(self.pid())
    }

    /// How long the threads of the server's group have been running or
    /// ready to run: see [`procfs::group_busy_time`].
    pub fn busy_time(&self) -> io::Result<Duration> {
        procfs::group_busy_time(self.pid())
    }

    /// Live processes in the server's group, the server included.
    pub fn group_pids(&self) -> Vec<u32> {
        procfs::group_members(self.pid())
    }

    /// Children of the server that have exited but not been reaped.
    pub fn zombies(&self) -> Vec<u32> {
        procfs::zombies(self.pid())
    }

    /// Threads of the server process.
    pub fn threads(&self) -> io::Result<usize> {
        procfs::threads(self.pid())
    }

    /// Open file descriptors of the server process.
    pub fn open_fds(&self) -> io::Result<usize> {
        procfs::open_fds(self.pid())
    }

    /// What the server's whole process group holds.
    pub fn holdings(&self) -> Holdings {
        procfs::holdings(self.pid())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.group.try_wait(), Ok(None))
    }

    /// SIGTERM, up to `grace` to exit, then SIGKILL: see [`Group::stop`].
    pub fn stop(mut self, grace: Duration) -> io::Result<Stopped> {
        self.group.stop(grace)
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

/// Runs `program 127.0.0.1:0` once: `None` if it says it listens within
/// `wait`, or else what it said on stderr as it exited (a listing that the
/// machine cannot run, such as `uring` where io_uring is refused, says why
/// in one line).
pub fn refusal(program: &Path, wait: Duration) -> Option<String> {
    let mut child = match Command::new(program)
        .arg("127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Some(format!("cannot run {}: {e}", program.display())),
    };
    // Its first line, or nothing if it exits first; in a thread, so that
    // the wait is bounded.
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let (sender, first_line) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = stdout.read_line(&mut line);
        let _ = sender.send(line);
    });
    let line = first_line.recv_timeout(wait).unwrap_or_default();
    let _ = child.kill(); // it listens, or it may hang
    if line.starts_with("listening on ") {
        let _ = child.wait();
        return None;
    }
    let output = match child.wait_with_output() {
        Ok(output) => output,
        Err(e) => return Some(format!("waiting for {}: {e}", program.display())),
    };
    let why = String::from_utf8_lossy(&output.stderr).trim().to_string();
    Some(if why.is_empty() {
        format!(
            "{} exited ({}) saying nothing",
            program.display(),
            output.status
        )
    } else {
        why
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::group_members;
    use std::fs;

    /// A shell script as the server: `$1` is the address it was given.
    fn script(name: &str, body: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("testbed-{}-{name}.sh", std::process::id()));
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
