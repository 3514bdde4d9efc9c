//! Completion instead of readiness: one thread hands the kernel whole
//! operations (accept a connection, receive into this buffer, send these
//! bytes) through io_uring's submission queue, and learns from the
//! completion queue when each one is done and how it went. It never asks
//! whether a socket is ready; it never calls `read` or `write` at all.
//!
//! What a connection does with the bytes is what the event loops do:
//! `conn::Conn`, told how each receive and send went. The crux is what
//! differs: a buffer handed to a receive belongs to the kernel until that
//! receive's completion arrives. The kernel writes into it whenever data
//! comes, long after the call that submitted it returned. So every buffer
//! lives in its connection, and a connection is dropped only when no
//! operation of its is in flight.
//!
//! Run it with `cargo run --release -p uring -- [ADDR] [STEPS]`: it listens
//! on ADDR (default `127.0.0.1:9527`). STEPS names the chapter's measured
//! steps it takes (see [`Steps`]); the benchmark runs it once per step.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::ExitCode;
use std::ptr;
use std::time::Instant;
use std::{env, io};

use conn::{Conn, Interest};
use io_uring::{IoUring, Probe, cqueue, opcode, squeue, types};
use nix::errno::Errno;
use nix::sys::socket::{MsgFlags, SockFlag};

// ANCHOR: constants
/// Room for this many submissions between two calls into the kernel. When
/// it is full, `push` submits what is there to make room.
const SQ_ENTRIES: u32 = 256;

/// Room for this many completions the loop has not taken yet: one per open
/// connection at most, plus accepts, cancels and the tick. Should more
/// arrive, the kernel keeps the surplus aside (IORING_FEAT_NODROP, Linux
/// 5.5) and hands it over on the next `submit_and_wait`: none is lost.
const CQ_ENTRIES: u32 = 4096;

/// How often the loop looks for connections past their deadline.
static TICK: types::Timespec = types::Timespec::new().nsec(100_000_000);

/// How long accepting pauses when there is no descriptor left (EMFILE).
static PAUSE: types::Timespec = types::Timespec::new().nsec(10_000_000);
// ANCHOR_END: constants

// ANCHOR: user_data
/// What a submission asks of the kernel. Its completion comes back with
/// the 64 bits of `user_data` we gave the submission and nothing else to
/// say what it is about, so they carry the connection's number (high
/// bits) and the operation's code (low byte). The codes are written out,
/// so that they do not depend on the order of the variants, and none is
/// 0: a submission whose `user_data` was never set is none of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Op {
    /// Accept connections on the listener (connection number 0).
    Accept = 1,
    /// The pause after a failed accept is over: accept again.
    Resume = 2,
    /// The periodic timeout: time to look at deadlines.
    Tick = 3,
    /// Receive into the connection's buffer.
    Recv = 4,
    /// Send from the connection's pending responses.
    Send = 5,
    /// Cancel the connection's operation in flight.
    Cancel = 6,
}

impl TryFrom<u8> for Op {
    type Error = u8;

    /// The operation whose code `code` is, or `code` back if none is.
    fn try_from(code: u8) -> Result<Op, u8> {
        match code {
            1 => Ok(Op::Accept),
            2 => Ok(Op::Resume),
            3 => Ok(Op::Tick),
            4 => Ok(Op::Recv),
            5 => Ok(Op::Send),
            6 => Ok(Op::Cancel),
            _ => Err(code),
        }
    }
}

fn user_data(id: u64, op: Op) -> u64 {
    id << 8 | op as u64
}

fn decode(user_data: u64) -> (u64, Op) {
    let op = Op::try_from((user_data & 0xff) as u8);
    // The kernel hands back the values we gave it, and nothing else.
    (user_data >> 8, op.expect("a code of ours"))
}
// ANCHOR_END: user_data

// ANCHOR: steps
/// The chapter's steps, each measured on its own: which ones this run
/// takes, from its second argument (or `URING_STEPS`), a list such as
/// `batch,sqpoll`, or `none`. Without either: `batch`, every step a server
/// should take; `sqpoll` costs a core, and is asked for by name.
#[derive(Debug, Clone, Copy, Default)]
struct Steps {
    /// Hand the kernel everything queued in one `io_uring_enter` per turn
    /// of the loop, rather than one per operation.
    batch: bool,
    /// Let a kernel thread take submissions from the queue as they come
    /// (`SQPOLL`): the loop then needs no system call to submit.
    sqpoll: bool,
}

impl Steps {
    fn from_args() -> Result<Steps, String> {
        let list = env::args().nth(2).or_else(|| env::var("URING_STEPS").ok());
        let mut steps = Steps::default();
        for step in list.as_deref().unwrap_or("batch").split(',') {
            match step.trim() {
                "none" => {}
                "batch" => steps.batch = true,
                "sqpoll" => steps.sqpoll = true,
                other => return Err(format!("no step called {other:?}")),
            }
        }
        Ok(steps)
    }
}
// ANCHOR_END: steps

// ANCHOR: setup
/// How long the `SQPOLL` thread polls an empty queue before it sleeps.
const SQPOLL_IDLE_MS: u32 = 100;

/// Sets up the rings, or says in one line why this kernel will not. A step
/// this kernel lacks is left out, with one line on stderr to say so.
fn setup(steps: &mut Steps) -> Result<IoUring, String> {
    if steps.sqpoll {
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_sqpoll(SQPOLL_IDLE_MS)
            .build(SQ_ENTRIES);
        match ring {
            Ok(ring) => return probe(ring),
            // Before Linux 5.11 only root may ask for it.
            Err(e) => {
                eprintln!("uring: no SQPOLL here ({e}); submitting ourselves");
                steps.sqpoll = false;
            }
        }
    }
    let ring = IoUring::builder()
        .setup_cqsize(CQ_ENTRIES)
        .build(SQ_ENTRIES)
        .map_err(|e| match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
            Errno::ENOSYS => "this kernel has no io_uring (it needs Linux 5.1 \
                 or later, built with CONFIG_IO_URING)"
                .to_string(),
            Errno::EPERM => "io_uring_setup was refused (EPERM): the sysctl \
                 kernel.io_uring_disabled, or a seccomp filter such as a \
                 container's, forbids io_uring here"
                .to_string(),
            Errno::EINVAL => {
                "this kernel's io_uring is too old (this server needs Linux 5.6)"
                    .to_string()
            }
            _ => format!("io_uring_setup failed: {e}"),
        })?;
    probe(ring)
}

/// Checks that the kernel knows every operation this server submits.
fn probe(ring: IoUring) -> Result<IoUring, String> {
    // Which operations does this kernel know? (Asking needs Linux 5.6.)
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe).map_err(|e| {
        format!("this kernel's io_uring is too old to list its operations: {e}")
    })?;
    for (code, name, since) in [
        (opcode::Timeout::CODE, "TIMEOUT", "5.4"),
        (opcode::Accept::CODE, "ACCEPT", "5.5"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL", "5.5"),
        (opcode::Recv::CODE, "RECV", "5.6"),
        (opcode::Send::CODE, "SEND", "5.6"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!(
                "this kernel's io_uring has no {name} operation (Linux {since})"
            ));
        }
    }
    Ok(ring)
}
// ANCHOR_END: setup

// ANCHOR: main
fn main() -> ExitCode {
    // Before binding: a server that cannot serve should not say it listens.
    let mut steps = match Steps::from_args() {
        Ok(steps) => steps,
        Err(why) => {
            eprintln!("uring: {why} (steps: none, batch, sqpoll)");
            return ExitCode::FAILURE;
        }
    };
    let ring = match setup(&mut steps) {
        Ok(ring) => ring,
        Err(why) => {
            eprintln!("uring: cannot use io_uring: {why}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = listen_and_serve(ring, steps) {
        eprintln!("uring: {e}");
    }
    ExitCode::FAILURE // `run` returns only on an error
}

fn listen_and_serve(ring: IoUring, steps: Steps) -> io::Result<()> {
    let addr = env::args().nth(1);
    let listener = wire::listen(addr.as_deref())?;
    println!("listening on http://{}", listener.local_addr()?);
    Server::new(ring, listener, steps).run()
}
// ANCHOR_END: main

// ANCHOR: conn
/// One connection: its socket, its state, and the one operation of it in
/// flight, a receive or a send. The state is the event loops' `conn::Conn`,
/// which holds the buffer the operation names: `space()` for a receive,
/// `unsent()` for a send. That buffer belongs to the kernel until the
/// operation's completion arrives, and `Conn` keeps it on the heap, where
/// it stays put when the map of connections moves the entry.
struct Entry {
    stream: TcpStream,
    conn: Conn,
    /// The operation in flight: `Recv` or `Send`.
    op: Op,
}
// ANCHOR_END: conn

impl Entry {
    fn new(stream: TcpStream) -> Entry {
        Entry {
            stream,
            conn: Conn::new(Instant::now()),
            op: Op::Recv,
        }
    }

    // ANCHOR: completed
    /// The operation in flight completed with `result` (a byte count, or a
    /// negated errno). Returns the next operation to submit, or `None` to
    /// close the connection.
    fn completed(&mut self, result: i32) -> Option<Op> {
        let n = match result {
            n if n > 0 => n as usize,
            // A receive of 0 bytes: the client closed its side.
            0 => return None,
            e => match Errno::from_raw(-e) {
                // Interrupted before anything happened: the same again.
                Errno::EINTR | Errno::EAGAIN => return Some(self.op),
                // ECANCELED (the deadline passed), ECONNRESET, EPIPE...
                _ => return None,
            },
        };
        // What a read or a write of `n` bytes means for the connection is
        // the same as in the event loops.
        let next = match self.op {
            Op::Recv => self.conn.received(n),
            _ => self.conn.sent(n, &self.stream).ok()?,
        };
        match next {
            Interest::Read => Some(Op::Recv),
            Interest::Write => Some(Op::Send),
            Interest::Close => None,
        }
    }
    // ANCHOR_END: completed
}

/// The loop's state: the rings, the listener and the open connections.
struct Server {
    ring: IoUring,
    listener: TcpListener,
    conns: HashMap<u64, Entry>,
    /// The number of the last connection accepted. Numbers are never
    /// reused, so a late completion or cancel cannot hit a newer connection.
    last_id: u64,
    /// Whether to accept with one multishot submission (Linux 5.19) or one
    /// submission per connection.
    multishot: bool,
    steps: Steps,
}

impl Server {
    fn new(ring: IoUring, listener: TcpListener, steps: Steps) -> Server {
        Server {
            ring,
            listener,
            conns: HashMap::new(),
            last_id: 0,
            multishot: true,
            steps,
        }
    }

    // ANCHOR: push
    /// Queues one submission, first submitting what is queued if the queue
    /// is full. Without the `batch` step, it is submitted at once: one
    /// system call per operation. An error here means the kernel takes no
    /// more work (it is out of memory, say): the server stops, and says why.
    ///
    /// # Safety
    ///
    /// Whatever `entry` points to (a buffer, a timespec) must stay valid and
    /// untouched until the kernel is done with it: for a receive or a send,
    /// until its completion arrives.
    unsafe fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        // SAFETY: passed on to our caller.
        while unsafe { self.ring.submission().push(entry) }.is_err() {
            self.ring.submit()?;
        }
        if !self.steps.batch {
            self.ring.submit()?;
        }
        Ok(())
    }
    // ANCHOR_END: push

    // ANCHOR: run
    fn run(mut self) -> io::Result<()> {
        self.accept()?;
        self.tick()?;
        let mut done = Vec::new();
        loop {
            // One system call: hand over everything queued, and sleep until
            // at least one completion is there.
            if let Err(e) = self.ring.submit_and_wait(1) {
                match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
                    // A signal came; or completions are held back because
                    // the completion queue is full: take those we have.
                    Errno::EINTR | Errno::EBUSY => {}
                    _ => return Err(e),
                }
            }
            done.clear();
            done.extend(
                self.ring
                    .completion()
                    .map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags())),
            );
            for &(data, result, flags) in &done {
                let (id, op) = decode(data);
                match op {
                    Op::Accept => self.accepted(result, cqueue::more(flags))?,
                    Op::Resume => self.accept()?,
                    Op::Tick => self.tick()?,
                    // The cancelled operation completes on its own.
                    Op::Cancel => {}
                    Op::Recv | Op::Send => self.progress(id, result)?,
                }
            }
        }
    }
    // ANCHOR_END: run

    // ANCHOR: accept
    /// Asks the kernel for connections: with one multishot submission that
    /// completes once per connection and stays armed, or with a submission
    /// for the next one only.
    fn accept(&mut self) -> io::Result<()> {
        let fd = types::Fd(self.listener.as_raw_fd());
        let flags = SockFlag::SOCK_CLOEXEC.bits();
        let entry = if self.multishot {
            opcode::AcceptMulti::new(fd).flags(flags).build()
        } else {
            opcode::Accept::new(fd, ptr::null_mut(), ptr::null_mut())
                .flags(flags)
                .build()
        };
        // SAFETY: no buffer: we do not ask for the client's address.
        unsafe { self.push(&entry.user_data(user_data(0, Op::Accept))) }
    }

    /// An accept completed: `result` is the new socket's descriptor, or a
    /// negated errno. `more` says that a multishot accept is still armed.
    fn accepted(&mut self, result: i32, more: bool) -> io::Result<()> {
        let again = if result >= 0 {
            // SAFETY: the kernel just made this descriptor for us alone.
            let stream = unsafe { TcpStream::from_raw_fd(result) };
            self.last_id += 1;
            self.conns.insert(self.last_id, Entry::new(stream));
            self.submit(self.last_id)?;
            true
        } else {
            match Errno::from_raw(-result) {
                // Before Linux 5.19 the kernel refuses the multishot flag.
                Errno::EINVAL if self.multishot => {
                    eprintln!(
                        "uring: no multishot accept (Linux 5.19); \
                         accepting one at a time"
                    );
                    self.multishot = false;
                    true
                }
                // That client gave up before we took it: not our problem.
                Errno::ECONNABORTED | Errno::EINTR | Errno::EAGAIN => true,
                // EMFILE and friends: accepting again now would fail again
                // at once, in a loop at 100% CPU.
                _ => false,
            }
        };
        if more {
            Ok(()) // the multishot accept is still armed
        } else if again {
            self.accept()
        } else {
            // Pause, as `wire::accept` does, then accept again.
            let pause = opcode::Timeout::new(&PAUSE).build();
            // SAFETY: PAUSE is a static.
            unsafe { self.push(&pause.user_data(user_data(0, Op::Resume))) }
        }
    }
    // ANCHOR_END: accept

    // ANCHOR: submit
    /// Submits the connection's next operation, `entry.op`, on its buffer.
    fn submit(&mut self, id: u64) -> io::Result<()> {
        let entry = self.conns.get_mut(&id).expect("a known connection");
        let fd = types::Fd(entry.stream.as_raw_fd());
        let sqe = match entry.op {
            Op::Recv => {
                let space = entry.conn.space();
                opcode::Recv::new(fd, space.as_mut_ptr(), space.len() as u32).build()
            }
            _ => {
                let rest = entry.conn.unsent();
                // The last bytes of a connection wait for the close, which
                // sends them with its FIN in one packet (as `conn::send`).
                let mut flags = MsgFlags::MSG_NOSIGNAL.bits();
                if entry.conn.closing() {
                    flags |= nix::libc::MSG_MORE;
                }
                opcode::Send::new(fd, rest.as_ptr(), rest.len() as u32)
                    .flags(flags)
                    .build()
            }
        };
        let sqe = sqe.user_data(user_data(id, entry.op));
        // SAFETY: the buffer is on the heap, owned by `entry.conn`, which
        // stays in `self.conns`. `Conn` moves it, or writes to it, only in
        // `received` and `sent`, which are called when this operation has
        // completed (see `progress`), and not before.
        unsafe { self.push(&sqe) }
    }

    /// The connection's operation completed: go on, or close.
    fn progress(&mut self, id: u64, result: i32) -> io::Result<()> {
        let Some(entry) = self.conns.get_mut(&id) else {
            return Ok(()); // cannot happen: one operation per connection
        };
        // Past its deadline the connection is given up, whatever came.
        let next = if Instant::now() >= entry.conn.deadline() {
            None
        } else {
            entry.completed(result)
        };
        match next {
            Some(op) => {
                entry.op = op;
                self.submit(id)
            }
            None => {
                // Nothing of it is in flight now: dropping it closes the
                // socket and frees its buffers.
                self.conns.remove(&id);
                Ok(())
            }
        }
    }
    // ANCHOR_END: submit

    // ANCHOR: tick
    /// Cancels the operation in flight of every connection past its
    /// deadline, and sets the next tick. A cancelled operation completes
    /// with -ECANCELED, and `progress` closes its connection then, not
    /// before: until that completion, the kernel may still use its buffer.
    fn tick(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let late: Vec<(u64, Op)> = (self.conns.iter())
            .filter(|(_, entry)| entry.conn.deadline() <= now)
            .map(|(&id, entry)| (id, entry.op))
            .collect();
        for (id, op) in late {
            let cancel = opcode::AsyncCancel::new(user_data(id, op)).build();
            // SAFETY: no buffer.
            unsafe { self.push(&cancel.user_data(user_data(id, Op::Cancel)))? };
        }
        let tick = opcode::Timeout::new(&TICK).build();
        // SAFETY: TICK is a static.
        unsafe { self.push(&tick.user_data(user_data(0, Op::Tick))) }
    }
    // ANCHOR_END: tick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_decodes_to_the_op_that_has_it() {
        for code in 0..=u8::MAX {
            if let Ok(op) = Op::try_from(code) {
                assert_eq!(op as u8, code, "{op:?}");
                assert_eq!(decode(user_data(7, op)), (7, op));
            }
        }
    }
}
