//! A child process that leads a process group of its own, so that whatever
//! it forks (workers, say) can be found, measured and killed along with
//! it, and that is never left behind.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::procfs;

/// A running process group. Dropping it kills the whole group.
#[derive(Debug)]
pub struct Group {
    child: Child,
    /// [`Group::stop`] saw the leader exit by itself, or killed the group:
    /// nothing is left to kill on drop.
    stopped: bool,
}

/// How a group's leader ended.
#[derive(Debug, Clone, Copy)]
pub struct Stopped {
    pub status: ExitStatus,
    /// It did not exit within the grace period and was SIGKILLed, with its
    /// group.
    pub killed: bool,
    /// From SIGTERM to its exit.
    pub after: Duration,
}

impl Group {
    /// Spawns `command` as the leader of a new process group.
    pub fn spawn(command: &mut Command) -> io::Result<Group> {
        let child = command.process_group(0).spawn()?;
        Ok(Group {
            child,
            stopped: false,
        })
    }

    /// The leader's pid, which is also the group's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The leader, for its pipes.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// The leader's exit status, if it has exited.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Asks the leader to stop with SIGTERM and waits up to `grace` for it
    /// to exit; then SIGKILLs the whole group. A leader that exits by
    /// itself is expected to have taken its workers with it: whatever of
    /// its group is left is not killed here, so that
    /// [`procfs::group_members`] can show it.
    pub fn stop(&mut self, grace: Duration) -> io::Result<Stopped> {
        let start = Instant::now();
        // Not if it has exited and been reaped: its pid may be another's now.
        if self.try_wait()?.is_none() {
            kill(self.nix_pid(), Signal::SIGTERM)?;
        }
        loop {
            if let Some(status) = self.try_wait()? {
                self.stopped = true;
                return Ok(Stopped {
                    status,
                    killed: false,
                    after: start.elapsed(),
                });
            }
            if start.elapsed() >= grace {
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        let status = self.kill()?;
        Ok(Stopped {
            status,
            killed: true,
            after: start.elapsed(),
        })
    }

    /// SIGKILLs the whole group and reaps the leader. A process group
    /// outlives its leader, so this reaches the workers of a leader that
    /// has already exited, too.
    pub fn kill(&mut self) -> io::Result<ExitStatus> {
        let _ = killpg(self.nix_pid(), Signal::SIGKILL);
        let status = self.child.wait()?;
        self.stopped = true;
        // The signal is sent, but dying takes a moment: wait for it, briefly.
        let deadline = Instant::now() + Duration::from_secs(1);
        while !procfs::group_members(self.pid()).is_empty() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        Ok(status)
    }

    fn nix_pid(&self) -> Pid {
        Pid::from_raw(self.pid() as i32)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.kill();
        }
    }
}
