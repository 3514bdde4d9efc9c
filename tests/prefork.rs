//! What the pre-forked server promises beyond the shared rows: a worker that
//! dies is reaped and replaced while the others go on serving; the parent
//! stops every worker when it is asked to stop, and the workers go too when
//! the parent is killed outright; nothing is left behind, not even a zombie.
//! The first of these hold for `epoll-prefork` too, whose parent is the same
//! code (the `prefork` library) with event loops for workers.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::Duration;

use nix::sys::ptrace;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use support::{GET_CLOSE, Server, WAIT, assert_bytes, exchange, start, start_with, wait_until};

/// The servers whose parent is the `prefork` library.
const SUPERVISED: [&str; 2] = ["prefork", "epoll-prefork"];

/// The live processes of the server's group other than the parent.
fn workers(server: &Server) -> Vec<u32> {
    let mut pids = server.group_pids();
    pids.retain(|&pid| pid != server.pid());
    pids
}

fn nix_pid(pid: u32) -> Pid {
    Pid::from_raw(i32::try_from(pid).expect("a pid fits in an i32"))
}

fn signal(pid: u32, signal: Signal) {
    kill(nix_pid(pid), signal).expect("send a signal");
}

#[track_caller]
fn assert_served(server: &Server) {
    let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
    assert_bytes(&got, support::RESPONSE);
}

#[track_caller]
fn assert_all_gone(pids: &[u32], pgid: u32) {
    let left = support::procfs::group_members(pgid);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    let left: Vec<u32> = pids
        .iter()
        .copied()
        .filter(|&p| support::procfs::in_group(p, pgid))
        .collect();
    assert!(left.is_empty(), "still in /proc: {left:?}");
}

#[test]
fn one_worker_per_cpu_by_default() {
    for name in SUPERVISED {
        let server = start(name);
        let cpus = thread::available_parallelism().map_or(1, |n| n.get());
        wait_until("a worker per CPU", || workers(&server).len() == cpus);
    }
}

#[test]
fn a_killed_worker_is_replaced() {
    for name in SUPERVISED {
        a_killed_worker_of_is_replaced(name);
    }
}

fn a_killed_worker_of_is_replaced(name: &str) {
    let server = start_with(name, &["2"]);
    wait_until("two workers", || workers(&server).len() == 2);
    let before = workers(&server);
    let victim = before[0];
    signal(victim, Signal::SIGKILL);
    // Until it has actually died, the victim is still among those waiting
    // in `accept`, and the kernel may hand it one more connection, which
    // dies with it. Wait for it to be dead (a zombie, or reaped already).
    wait_until("the victim to die", || !workers(&server).contains(&victim));

    // The other worker goes on serving meanwhile.
    assert_served(&server);
    wait_until("a replacement worker", || {
        let now = workers(&server);
        now.len() == 2 && !now.contains(&victim)
    });
    // The parent reaped the dead worker before forking its replacement.
    assert_eq!(server.zombies(), Vec::<u32>::new());
    for _ in 0..20 {
        assert_served(&server);
    }
    assert_eq!(workers(&server).len(), 2);
    assert_eq!(server.zombies(), Vec::<u32>::new());
}

#[test]
fn sigterm_stops_every_worker() {
    for name in SUPERVISED {
        sigterm_stops_every_worker_of(name);
    }
}

fn sigterm_stops_every_worker_of(name: &str) {
    let server = start_with(name, &["3"]);
    wait_until("three workers", || workers(&server).len() == 3);
    assert_served(&server);
    let pid = server.pid();
    let all = server.group_pids();

    let stopped = server.stop(WAIT).expect("stop the server");
    assert!(!stopped.killed, "the parent ignored SIGTERM for {WAIT:?}");
    assert!(stopped.status.success(), "{:?}", stopped.status);
    assert_all_gone(&all, pid);
}

#[test]
fn sigint_stops_every_worker() {
    let mut server = start_with("prefork", &["2"]);
    wait_until("two workers", || workers(&server).len() == 2);
    let pid = server.pid();
    let all = server.group_pids();

    signal(pid, Signal::SIGINT);
    wait_until("the parent to exit", || !server.is_running());
    assert_all_gone(&all, pid);
}

#[test]
fn workers_die_with_a_killed_parent() {
    for name in SUPERVISED {
        workers_of_die_with_a_killed_parent(name);
    }
}

fn workers_of_die_with_a_killed_parent(name: &str) {
    let server = start_with(name, &["2"]);
    wait_until("two workers", || workers(&server).len() == 2);
    let pid = server.pid();

    // SIGKILL cannot be caught: the parent stops no one. The kernel sends
    // each worker its parent-death signal instead.
    signal(pid, Signal::SIGKILL);
    // Orphans are reaped by whoever adopts them, which may take its time:
    // what matters here is that none of them is still alive.
    wait_until("every worker to die", || {
        support::procfs::group_members(pid).is_empty()
    });
}

/// Whoever starts a server may be ignoring SIGTERM and SIGINT (a shell
/// ignores SIGINT for its background jobs), and what a signal does is
/// inherited across fork and exec. The workers must put the defaults back,
/// or the parent would wait forever for workers that ignore its SIGTERM.
#[test]
fn workers_stop_even_when_started_ignoring_sigterm() {
    let program = support::program("prefork");
    let script = std::env::temp_dir().join(format!("prefork-ignoring-{}.sh", std::process::id()));
    let body = format!(
        "#!/bin/sh\ntrap '' TERM INT\nexec '{}' \"$@\"\n",
        program.display()
    );
    fs::write(&script, body).unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    // Another test's fork may briefly hold the script open for writing.
    let mut tries = 0;
    let server = loop {
        match Server::start(&script, &["2"]) {
            Err(e) if e.kind() == ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                thread::sleep(Duration::from_millis(20));
            }
            started => break started.expect("start prefork through a shell"),
        }
    };
    wait_until("two workers", || workers(&server).len() == 2);
    assert_served(&server);
    let pid = server.pid();
    let all = server.group_pids();

    let stopped = server.stop(WAIT).expect("stop the server");
    fs::remove_file(&script).unwrap();
    assert!(!stopped.killed, "the parent did not exit within {WAIT:?}");
    assert!(stopped.status.success(), "{:?}", stopped.status);
    assert_all_gone(&all, pid);
}

/// A worker stopped with SIGSTOP (or Ctrl-Z) cannot act on the SIGTERM
/// its parent sends until it runs again: the parent must wake it with
/// SIGCONT, or wait for it forever. Only the parent is signalled here.
#[test]
fn a_stopped_worker_does_not_hold_up_the_stop() {
    let server = start_with("prefork", &["2"]);
    wait_until("two workers", || workers(&server).len() == 2);
    let pid = server.pid();
    let all = server.group_pids();
    signal(workers(&server)[0], Signal::SIGSTOP);

    let stopped = server.stop(WAIT).expect("stop the server");
    assert!(!stopped.killed, "the parent did not exit within {WAIT:?}");
    assert!(stopped.status.success(), "{:?}", stopped.status);
    assert_all_gone(&all, pid);
}

/// A worker that a debugger traces does not act on SIGTERM, or SIGCONT,
/// until the debugger lets it: the parent gives up waiting after its
/// grace period, and kills it. The test is the debugger (`ptrace`); where
/// it may not trace, the test says so and passes.
#[test]
fn a_traced_worker_is_killed_when_the_parent_stops() {
    let server = start_with("prefork", &["2"]);
    wait_until("two workers", || workers(&server).len() == 2);
    let pid = server.pid();
    let all = server.group_pids();
    let victim = nix_pid(workers(&server)[0]);

    // The thread that attaches is the tracer: it hears of every stop of
    // the worker, and of its death, which reaches the worker's parent
    // only once the tracer has collected it.
    let (attached, attaching) = std::sync::mpsc::channel();
    let tracer = thread::spawn(move || {
        let result = ptrace::attach(victim);
        let traced = result.is_ok();
        attached.send(result).unwrap();
        if !traced {
            return;
        }
        loop {
            match waitpid(victim, Some(WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) => return,
                Err(e) if e != nix::errno::Errno::EINTR => return,
                _ => {}
            }
        }
    });
    if let Err(e) = attaching.recv().unwrap() {
        println!("skipped: this process may not trace its server's worker: {e}");
        return;
    }
    wait_until("the worker to be traced", || {
        support::procfs::traced(victim.as_raw() as u32)
    });

    let stopped = server.stop(WAIT).expect("stop the server");
    assert!(!stopped.killed, "the parent did not exit within {WAIT:?}");
    assert!(stopped.status.success(), "{:?}", stopped.status);
    tracer.join().unwrap();
    assert_all_gone(&all, pid);
}
