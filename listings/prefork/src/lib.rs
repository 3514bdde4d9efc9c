//! Pre-forked processes: the parent binds one listening socket, forks N
//! workers that each serve connections from it, and from then on only
//! watches over them: it replaces a worker that dies, and stops them all
//! when it is told to. What a worker does with the socket is the caller's:
//! the `prefork` server's workers accept and serve one connection at a
//! time; `epoll-prefork`'s each run an event loop.
//!
//! The parent never starts a thread. `fork` copies only the thread that
//! calls it, so a parent with threads could hand its workers a lock that
//! some other thread held at that instant, and that nobody will ever
//! release in the copy.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::TcpListener;
use std::process;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::{self, SigHandler, SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, alarm, fork, getpid, getppid};

// ANCHOR: constants
/// A worker that dies sooner than this after it was forked is replaced
/// only after a pause, so a worker that cannot start does not turn the
/// parent into a fork loop.
const YOUNG: Duration = Duration::from_secs(1);

/// How long the parent, stopping, waits for its workers to act on
/// `SIGTERM` before it kills the rest with `SIGKILL`; and how often it
/// looks meanwhile.
const GRACE: Duration = Duration::from_secs(2);
const GRACE_POLL: Duration = Duration::from_millis(10);
// ANCHOR_END: constants

/// What a worker does with the listening socket, from after its setup to
/// its end. It should never return: a worker that does, error or not, exits
/// and is replaced.
pub type Serve = fn(&TcpListener) -> io::Result<()>;

// ANCHOR: run
/// Takes the address and the number of workers from the command line
/// (`[ADDR [N]]`), binds, forks N workers that each run `serve`, and
/// supervises them until told to stop (`SIGTERM` or `SIGINT`).
pub fn run(serve: Serve) -> io::Result<()> {
    // Before anything else, and before any fork: from here on these signals
    // are never delivered to the parent, only held pending, and the
    // supervising loop takes them one at a time with `wait`. No handler
    // ever runs, so nothing can interrupt the parent halfway through
    // changing its table of workers.
    let mut signals = SigSet::empty();
    for signal in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGCHLD,
        Signal::SIGALRM,
    ] {
        signals.add(signal);
    }
    signals.thread_block()?;

    let mut args = std::env::args().skip(1);
    let addr = args.next();
    let size = wire::workers(args.next())?;
    let listener = wire::listen(addr.as_deref())?;

    let mut workers = Workers {
        listener,
        serve,
        size,
        running: HashMap::new(),
    };
    let started = workers.fill().map_err(io::Error::from);
    if let Err(e) = started.and_then(|()| announce(&workers.listener)) {
        workers.stop();
        return Err(e);
    }
    supervise(&mut workers, &signals)
}

/// Says where the server listens, once the workers exist. The line is
/// flushed at once: the next fork copies this process's memory, unwritten
/// output included, and a replacement worker must not get a copy of it.
fn announce(listener: &TcpListener) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "listening on http://{}", listener.local_addr()?)?;
    out.flush()
}
// ANCHOR_END: run

// ANCHOR: supervise
/// Sleeps until a signal is pending, deals with it, and sleeps again.
fn supervise(workers: &mut Workers, signals: &SigSet) -> io::Result<()> {
    // Set while an alarm is due: missing workers are forked when it rings.
    let mut paused = false;
    loop {
        match signals.wait()? {
            // One or more workers have ended: reap them all, then fork
            // their replacements, unless one died young.
            Signal::SIGCHLD => {
                if workers.reap() && !paused {
                    paused = true;
                    alarm::set(1);
                }
            }
            Signal::SIGALRM => paused = false,
            // SIGTERM or SIGINT: stop every worker, then leave.
            _ => {
                workers.stop();
                return Ok(());
            }
        }
        if paused {
            continue;
        }
        if let Err(e) = workers.fill() {
            note(format_args!(
                "cannot fork a worker ({e}); trying again in a second"
            ));
            paused = true;
            alarm::set(1);
        }
    }
}
// ANCHOR_END: supervise

/// The parent's table of its workers.
struct Workers {
    listener: TcpListener,
    /// What each worker does.
    serve: Serve,
    /// How many workers there should be.
    size: usize,
    /// Every worker forked and not yet reaped, with when it was forked.
    running: HashMap<Pid, Instant>,
}

impl Workers {
    /// Forks workers until there are as many as there should be.
    fn fill(&mut self) -> nix::Result<()> {
        while self.running.len() < self.size {
            let pid = spawn(&self.listener, self.serve)?;
            self.running.insert(pid, Instant::now());
        }
        Ok(())
    }

    // ANCHOR: reap
    /// Collects the exit status of every worker that has ended, which frees
    /// what the kernel kept of it (a zombie). Returns whether any of them
    /// died young.
    fn reap(&mut self) -> bool {
        let mut young = false;
        loop {
            // SIGCHLD is not counted: two workers dying together may raise
            // it once. So reap until there is nothing left to reap.
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => {
                    young |= self.ended(pid, format_args!("exited with code {code}"));
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) => {
                    young |= self.ended(pid, format_args!("was killed by {signal}"));
                }
                Err(Errno::EINTR) => {}
                // StillAlive: nobody else has ended. ECHILD: no child at all.
                _ => return young,
            }
        }
    }
    // ANCHOR_END: reap

    fn ended(&mut self, pid: Pid, how: std::fmt::Arguments) -> bool {
        let Some(forked) = self.running.remove(&pid) else {
            return false;
        };
        let young = forked.elapsed() < YOUNG;
        let when = if young { " in a second" } else { "" };
        note(format_args!("worker {pid} {how}; starting another{when}"));
        young
    }

    // ANCHOR: stop
    /// Asks every worker to stop, gives them [`GRACE`] to do so, kills any
    /// still there, and reaps them all.
    fn stop(&mut self) {
        for &pid in self.running.keys() {
            // A worker that has already died is a zombie until we reap it,
            // so its pid cannot have been given to another process yet:
            // these signals reach our worker or nobody.
            let _ = kill(pid, Signal::SIGTERM);
            // A stopped worker (SIGSTOP, Ctrl-Z) keeps SIGTERM pending
            // until it runs again: let it run.
            let _ = kill(pid, Signal::SIGCONT);
        }
        let deadline = Instant::now() + GRACE;
        loop {
            self.running.retain(|&pid, _| {
                let status = waitpid(pid, Some(WaitPidFlag::WNOHANG));
                matches!(status, Ok(WaitStatus::StillAlive) | Err(Errno::EINTR))
            });
            if self.running.is_empty() || Instant::now() >= deadline {
                break;
            }
            thread::sleep(GRACE_POLL);
        }
        // Whatever holds one back (a debugger that traces it, say),
        // SIGKILL it cannot.
        for (pid, _) in self.running.drain() {
            let _ = kill(pid, Signal::SIGKILL);
            while matches!(waitpid(pid, None), Err(Errno::EINTR)) {}
        }
    }
    // ANCHOR_END: stop
}

// ANCHOR: spawn
/// Forks one worker. Returns its pid in the parent; never returns in the
/// worker.
fn spawn(listener: &TcpListener, serve: Serve) -> nix::Result<Pid> {
    let parent = getpid();
    // SAFETY: this process has a single thread, so the child's copy of its
    // memory is consistent: no lock in it is held by a thread that the copy
    // does not have.
    match unsafe { fork() }? {
        ForkResult::Parent { child } => Ok(child),
        ForkResult::Child => work(listener, parent, serve),
    }
}

/// What a worker does, from its first instruction to its death.
fn work(listener: &TcpListener, parent: Pid, serve: Serve) -> ! {
    // What a signal does survives fork, and exec too: whoever started the
    // server may have been ignoring SIGTERM or SIGINT (a shell ignores
    // SIGINT for its background jobs), and so would the worker. Put back
    // the default for both, so that they end it. The one other change,
    // SIGPIPE ignored by Rust's runtime before `main`, we keep: writing to
    // a connection the client closed is then an error, not death.
    for stop in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: this installs no handler, only the default action.
        let _ = unsafe { signal::signal(stop, SigHandler::SigDfl) };
    }
    // The mask is inherited too: unblock everything.
    let _ = SigSet::empty().thread_set_mask();
    // If the parent dies, even of SIGKILL, which it cannot catch, the
    // kernel sends this worker SIGTERM...
    let _ = prctl::set_pdeathsig(Signal::SIGTERM);
    // ...unless the parent died before that line: then this worker has
    // already been handed to another parent, and nobody will tell it.
    if getppid() != parent {
        process::exit(0);
    }
    // Whatever ended it, the parent sees the exit and forks another.
    if let Err(e) = serve(listener) {
        note(format_args!("worker {} failed: {e}", getpid()));
    }
    process::exit(1)
}
// ANCHOR_END: spawn

/// A line on standard error. If nobody reads it, the parent carries on.
fn note(what: std::fmt::Arguments) {
    let _ = writeln!(io::stderr(), "prefork: {what}");
}
