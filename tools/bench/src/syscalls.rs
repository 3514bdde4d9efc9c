//! The server's system calls, counted by the kernel around one run:
//! `perf stat -e raw_syscalls:sys_enter -p PID`, which counts at the
//! tracepoint every system call passes, in every thread the process has
//! when counting starts, without stopping it (unlike `strace`, which stops
//! the server at every call and so changes how much each turn of an event
//! loop finds to do). Where perf is missing or may not trace, there is no
//! count.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long perf gets to attach before the load starts.
const ATTACH: Duration = Duration::from_millis(300);

pub struct Counting {
    perf: Child,
    out: PathBuf,
}

impl Counting {
    /// Starts counting the system calls of process `pid`.
    pub fn start(pid: u32) -> Option<Counting> {
        let out = std::env::temp_dir().join(format!("bench-syscalls-{pid}.csv"));
        let perf = Command::new("perf")
            .args(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(&out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        thread::sleep(ATTACH);
        Some(Counting { perf, out })
    }

    /// Stops counting (perf writes its count when interrupted), and
    /// returns the count, if perf could count.
    pub fn stop(mut self) -> Option<u64> {
        let pid = Pid::from_raw(i32::try_from(self.perf.id()).ok()?);
        let _ = kill(pid, Signal::SIGINT);
        // Interrupted, it exits with a failure status, count written or not.
        self.perf.wait().ok()?;
        let text = fs::read_to_string(&self.out).unwrap_or_default();
        let _ = fs::remove_file(&self.out);
        // CSV: the count, the unit (empty), the event, ...
        text.lines()
            .find(|l| l.contains("raw_syscalls:sys_enter"))?
            .split(',')
            .next()?
            .parse()
            .ok()
    }
}
