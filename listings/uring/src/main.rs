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

use std::collections::{HashMap, VecDeque};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::process::ExitCode;
use std::ptr;
use std::time::Instant;
use std::{env, io};

use conn::{Conn, Interest};
use io_uring::types::DestinationSlot;
use io_uring::{IoUring, Probe, cqueue, opcode, squeue, types};
use multishot::{BufRing, Multi};
use nix::errno::Errno;
use nix::sys::resource::{Resource, getrlimit};
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
    /// An operation whose completion asks nothing of us: the close of a
    /// direct descriptor (step 3).
    Done = 7,
    /// (Step 3) A descriptor of the process for a direct socket, made to
    /// shut down the socket's sending side.
    Shut = 8,
}

impl Op {
    /// Every operation, in any order: what a code is decoded against.
    const ALL: [Op; 8] = [
        Op::Accept,
        Op::Resume,
        Op::Tick,
        Op::Recv,
        Op::Send,
        Op::Cancel,
        Op::Done,
        Op::Shut,
    ];
}

impl TryFrom<u8> for Op {
    type Error = u8;

    /// The operation whose code `code` is, or `code` back if none is.
    fn try_from(code: u8) -> Result<Op, u8> {
        Op::ALL.into_iter().find(|&op| op as u8 == code).ok_or(code)
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
/// `batch,multishot`, or `none`. Without either: [`DEFAULT_STEPS`], every
/// step a server should take; `sqpoll` costs a core, and is asked for by
/// name.
#[derive(Debug, Clone, Copy, Default)]
struct Steps {
    /// 1. Hand the kernel everything queued in one `io_uring_enter` per
    ///    turn of the loop, rather than one per operation.
    batch: bool,
    /// 2. Receive with one multishot submission per connection, into
    ///    buffers the kernel picks from a ring of them (Linux 6.0).
    multishot: bool,
    /// 3. Accept into the ring's own table of descriptors, and name the
    ///    connections by their slot there (Linux 5.19).
    direct: bool,
    /// 4. Let a kernel thread take submissions from the queue as they come
    ///    (`SQPOLL`): the loop then needs no system call to submit.
    sqpoll: bool,
}

const DEFAULT_STEPS: &str = "batch,multishot,direct";

impl Steps {
    fn from_args() -> Result<Steps, String> {
        let list = env::args().nth(2).or_else(|| env::var("URING_STEPS").ok());
        let mut steps = Steps::default();
        for step in list.as_deref().unwrap_or(DEFAULT_STEPS).split(',') {
            match step.trim() {
                "none" => {}
                "batch" => steps.batch = true,
                "multishot" => steps.multishot = true,
                "direct" => steps.direct = true,
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
    // ANCHOR: defer
    let mut refused = None;
    if steps.batch {
        // The completion side of batching: the kernel keeps the work that
        // completes operations until the loop waits for completions, and
        // does it all then, in the loop's own thread (Linux 6.1).
        let ring = IoUring::builder()
            .setup_cqsize(CQ_ENTRIES)
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(SQ_ENTRIES);
        match ring {
            Ok(ring) => return probe(ring),
            Err(e) => refused = Some(e), // said below, if io_uring works
        }
    }
    // ANCHOR_END: defer
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
    if let Some(e) = refused {
        eprintln!("uring: no deferred completion work here ({e}; Linux 6.1)");
    }
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

// ANCHOR: register
/// Registers with the ring what steps 2 and 3 need: the ring of buffers
/// for multishot receives, and a table of direct descriptors as large as
/// this process may open descriptors. A step this kernel lacks is left out,
/// with one line on stderr to say so.
fn register(ring: &IoUring, steps: &mut Steps) -> Option<BufRing> {
    let mut probe = Probe::new();
    let installs = ring.submitter().register_probe(&mut probe).is_ok()
        && probe.is_supported(opcode::FixedFdInstall::CODE);
    if steps.direct && !installs {
        eprintln!("uring: no way to shut down a direct descriptor here (Linux 6.8)");
        steps.direct = false;
    }
    if steps.direct {
        let (limit, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 0));
        let slots = limit.min(MAX_DIRECT) as u32;
        if let Err(e) = ring.submitter().register_files_sparse(slots) {
            eprintln!("uring: no table of direct descriptors here ({e}; Linux 5.19)");
            steps.direct = false;
        }
    }
    if !steps.multishot {
        return None;
    }
    match BufRing::register(ring) {
        Ok(bufs) => Some(bufs),
        Err(e) => {
            eprintln!("uring: no ring of provided buffers here ({e}; Linux 5.19)");
            steps.multishot = false;
            None
        }
    }
}
// ANCHOR_END: register

/// The most direct descriptors asked for, whatever `RLIMIT_NOFILE` allows.
const MAX_DIRECT: u64 = 32768;

// ANCHOR: main
fn main() -> ExitCode {
    // Before binding: a server that cannot serve should not say it listens.
    let mut steps = match Steps::from_args() {
        Ok(steps) => steps,
        Err(why) => {
            eprintln!("uring: {why} (steps: none, batch, multishot, direct, sqpoll)");
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
    let bufs = register(&ring, &mut steps);
    if let Err(e) = listen_and_serve(ring, bufs, steps) {
        eprintln!("uring: {e}");
    }
    ExitCode::FAILURE // `run` returns only on an error
}

fn listen_and_serve(
    ring: IoUring,
    bufs: Option<BufRing>,
    steps: Steps,
) -> io::Result<()> {
    let addr = env::args().nth(1);
    let listener = wire::listen(addr.as_deref())?;
    println!("listening on http://{}", listener.local_addr()?);
    Server::new(ring, bufs, listener, steps).run()
}
// ANCHOR_END: main

// ANCHOR: conn
/// One connection: its socket, its state, and what of it is in flight: a
/// receive or a send, one at a time; with step 2, a multishot receive
/// armed beside them. The state is the event loops' `conn::Conn`, which
/// holds the buffer the operation names: `space()` for a receive,
/// `unsent()` for a send. That buffer belongs to the kernel until the
/// operation's completion arrives, and `Conn` keeps it on the heap, where
/// it stays put when the map of connections moves the entry.
struct Entry {
    socket: Socket,
    conn: Conn,
    /// What the connection waits for: `Recv` or `Send`, in flight (with
    /// step 2, a receive waits for the multishot one); `Cancel` once it is
    /// given up and waits only for its multishot receive to end.
    op: Op,
    /// (Step 2) Its multishot receive.
    multi: Multi,
    /// (Step 2) Ring buffers the kernel filled for it, whose bytes the
    /// connection has not taken yet: (buffer, start, end).
    held: VecDeque<(u16, usize, usize)>,
    /// (Step 2) The client will send no more: it closed, or reset.
    ended: bool,
    /// (Step 3) The connection's sending side is to be shut down.
    shut: bool,
}

/// A connection's socket: a descriptor of the process, or (step 3) a slot
/// in the ring's table of direct descriptors, which only the ring knows.
enum Socket {
    Stream(TcpStream),
    Direct(u32),
}

/// Builds an operation on a socket, whichever kind it is: `on!(socket,
/// |fd| entry)` evaluates `entry` with `fd` a `types::Fd` or `types::Fixed`.
macro_rules! on {
    ($socket:expr, |$fd:ident| $entry:expr) => {
        match $socket {
            Socket::Stream(stream) => {
                let $fd = types::Fd(std::os::fd::AsRawFd::as_raw_fd(stream));
                $entry
            }
            Socket::Direct(slot) => {
                let $fd = types::Fixed(*slot);
                $entry
            }
        }
    };
}
// ANCHOR_END: conn

impl Entry {
    fn new(socket: Socket) -> Entry {
        Entry {
            socket,
            conn: Conn::new(Instant::now()),
            op: Op::Recv,
            multi: Multi::New,
            held: VecDeque::new(),
            ended: false,
            shut: false,
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
        let next = match (self.op, &self.socket) {
            (Op::Recv, _) => self.conn.received(n),
            (_, Socket::Stream(stream)) => self.conn.sent(n, stream).ok()?,
            // A direct descriptor is shut down through the ring.
            (_, Socket::Direct(_)) => {
                let shut = &mut self.shut;
                let shutdown = || {
                    *shut = true;
                    Ok(())
                };
                self.conn.sent_with(n, shutdown).ok()?
            }
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
    /// (Step 2) Declared after `ring`, so dropped after it.
    bufs: Option<BufRing>,
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
    fn new(
        ring: IoUring,
        bufs: Option<BufRing>,
        listener: TcpListener,
        steps: Steps,
    ) -> Server {
        Server {
            ring,
            bufs,
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
                    Op::Cancel | Op::Done => {}
                    Op::Shut => Self::shut_down(result),
                    Op::Recv if self.multishot_in_flight(id) => {
                        self.received(id, result, flags)?
                    }
                    Op::Recv | Op::Send => self.progress(id, result)?,
                }
            }
        }
    }
    // ANCHOR_END: run

    // ANCHOR: accept
    /// Asks the kernel for connections: with one multishot submission that
    /// completes once per connection and stays armed, or with a submission
    /// for the next one only. With step 3, each into a free slot of the
    /// ring's table of direct descriptors.
    fn accept(&mut self) -> io::Result<()> {
        let fd = types::Fd(self.listener.as_raw_fd());
        let direct = self.steps.direct;
        // A direct descriptor is no descriptor of the process: an `exec`
        // has nothing to close (and the kernel refuses the flag for it).
        let flags = if direct {
            0
        } else {
            SockFlag::SOCK_CLOEXEC.bits()
        };
        let entry = if self.multishot {
            opcode::AcceptMulti::new(fd)
                .allocate_file_index(direct)
                .flags(flags)
                .build()
        } else {
            opcode::Accept::new(fd, ptr::null_mut(), ptr::null_mut())
                .file_index(direct.then(DestinationSlot::auto_target))
                .flags(flags)
                .build()
        };
        // SAFETY: no buffer: we do not ask for the client's address.
        unsafe { self.push(&entry.user_data(user_data(0, Op::Accept))) }
    }

    /// An accept completed: `result` is the new socket's descriptor (or
    /// slot), or a negated errno. `more` says that a multishot accept is
    /// still armed.
    fn accepted(&mut self, result: i32, more: bool) -> io::Result<()> {
        let again = if result >= 0 {
            let socket = if self.steps.direct {
                Socket::Direct(result as u32)
            } else {
                // SAFETY: the kernel just made this descriptor for us alone.
                Socket::Stream(unsafe { TcpStream::from_raw_fd(result) })
            };
            self.last_id += 1;
            self.conns.insert(self.last_id, Entry::new(socket));
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
                // EMFILE, or ENFILE for a full table of direct descriptors:
                // accepting again now would fail again at once, in a loop at
                // 100% CPU.
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
        if self.steps.multishot && self.conns[&id].op == Op::Recv {
            return self.feed(id);
        }
        let entry = self.conns.get_mut(&id).expect("a known connection");
        let sqe = match entry.op {
            Op::Recv => {
                let space = entry.conn.space();
                let (buf, len) = (space.as_mut_ptr(), space.len() as u32);
                on!(&entry.socket, |fd| opcode::Recv::new(fd, buf, len).build())
            }
            _ => {
                let rest = entry.conn.unsent();
                let (buf, len) = (rest.as_ptr(), rest.len() as u32);
                // The last bytes of a connection wait for the close, which
                // sends them with its FIN in one packet (as `conn::send`).
                let mut flags = MsgFlags::MSG_NOSIGNAL.bits();
                if entry.conn.closing() {
                    flags |= nix::libc::MSG_MORE;
                }
                on!(&entry.socket, |fd| opcode::Send::new(fd, buf, len)
                    .flags(flags)
                    .build())
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
        if std::mem::take(&mut entry.shut) {
            self.shut(id)?;
        }
        match next {
            Some(op) => {
                self.conns.get_mut(&id).expect("still there").op = op;
                self.submit(id)
            }
            None => self.close(id),
        }
    }

    /// Closes the connection, or, if its multishot receive is still in
    /// flight, cancels that, and closes it when it ends (in `received`).
    fn close(&mut self, id: u64) -> io::Result<()> {
        let entry = self.conns.get_mut(&id).expect("a known connection");
        if let Some(bufs) = &mut self.bufs {
            entry.held.drain(..).for_each(|(buf, ..)| bufs.give(buf));
        }
        entry.op = Op::Cancel;
        match entry.multi {
            Multi::Armed => self.stop(id),
            Multi::Stopping => Ok(()),
            Multi::New | Multi::Off | Multi::Starved => {
                // Nothing of it is in flight now: dropping it closes the
                // socket and frees its buffers; a direct descriptor is
                // closed through the ring.
                if let Some(Entry {
                    socket: Socket::Direct(slot),
                    ..
                }) = self.conns.remove(&id)
                {
                    let close = opcode::Close::new(types::Fixed(slot)).build();
                    // SAFETY: no buffer.
                    unsafe { self.push(&close.user_data(user_data(id, Op::Done)))? };
                }
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
    /// With step 2, a connection waiting for a request is closed at once
    /// (`close` cancels its multishot receive), and one whose receive was
    /// starved of buffers is armed again.
    fn tick(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let late: Vec<(u64, Op)> = (self.conns.iter())
            .filter(|(_, entry)| {
                entry.conn.deadline() <= now || entry.multi == Multi::Starved
            })
            .map(|(&id, entry)| (id, entry.op))
            .collect();
        for (id, op) in late {
            let entry = self.conns.get_mut(&id).expect("a known connection");
            if entry.multi == Multi::Starved && entry.conn.deadline() > now {
                entry.multi = Multi::Off;
                self.feed(id)?;
            } else if op == Op::Recv && self.steps.multishot {
                self.close(id)?;
            } else if op != Op::Cancel {
                let cancel = opcode::AsyncCancel::new(user_data(id, op)).build();
                // SAFETY: no buffer.
                unsafe { self.push(&cancel.user_data(user_data(id, Op::Cancel)))? };
            }
        }
        let tick = opcode::Timeout::new(&TICK).build();
        // SAFETY: TICK is a static.
        unsafe { self.push(&tick.user_data(user_data(0, Op::Tick))) }
    }
    // ANCHOR_END: tick

    // ANCHOR: direct
    /// (Step 3) Shuts down the sending side of a direct socket, as
    /// `Conn::sent_with` asked. `shutdown(2)` needs a descriptor of the
    /// process, so the ring installs one for the socket (a `Shutdown`
    /// operation would do, but the kernel hands it to a worker thread,
    /// which stays).
    fn shut(&mut self, id: u64) -> io::Result<()> {
        let Socket::Direct(slot) = self.conns[&id].socket else {
            return Ok(());
        };
        let install = opcode::FixedFdInstall::new(types::Fixed(slot), 0).build();
        // SAFETY: no buffer.
        unsafe { self.push(&install.user_data(user_data(id, Op::Shut))) }
    }

    /// (Step 3) The ring installed a descriptor (`result`) for a direct socket
    /// to shut down: shut it down, and close the descriptor. Should it fail,
    /// the connection lingers until its deadline.
    fn shut_down(result: i32) {
        if result >= 0 {
            // SAFETY: the kernel just made this descriptor for us alone.
            let stream = unsafe { TcpStream::from_raw_fd(result) };
            let _ = stream.shutdown(std::net::Shutdown::Write);
        }
    }
    // ANCHOR_END: direct
}

/// Step 2 of the chapter: each connection receives with one multishot
/// submission, into buffers the kernel picks from a ring of them.
mod multishot {
    use std::alloc::{self, Layout};
    use std::sync::atomic::{AtomicU16, Ordering};
    use std::time::Instant;
    use std::{io, ptr};

    use conn::Interest;
    use io_uring::types::BufRingEntry;
    use io_uring::{IoUring, cqueue, opcode, squeue, types};
    use nix::errno::Errno;

    use super::{Op, Server, Socket, user_data};

    // ANCHOR: buf_ring
    /// How many buffers the ring holds (a power of two), and their size.
    const BUFS: u16 = 1024;
    const BUF_SIZE: usize = 4096;

    /// The most buffers a connection holds, their bytes not yet taken, before
    /// its multishot receive is cancelled: a client that sends and does not
    /// read what it is owed cannot take the whole ring.
    const HELD_MAX: usize = 4;

    /// (Step 2) The buffers a multishot receive takes from: the kernel picks
    /// one for each completion and says which by its number, and it is ours
    /// until we give it back by writing its address at the ring's tail. The
    /// ring and the buffers are shared with the kernel, so they are reached
    /// through raw pointers only, never through a Rust reference that the
    /// kernel's writes would break.
    pub(super) struct BufRing {
        ring: *mut BufRingEntry,
        bufs: *mut u8,
        /// The ring's tail: the next entry to write.
        tail: u16,
    }

    /// The ring of entries must start on a page of its own.
    const RING: Layout = match Layout::from_size_align(
        BUFS as usize * size_of::<BufRingEntry>(),
        4096,
    ) {
        Ok(layout) => layout,
        Err(_) => panic!("a valid layout"),
    };
    const MEMORY: Layout = match Layout::from_size_align(BUFS as usize * BUF_SIZE, 64)
    {
        Ok(layout) => layout,
        Err(_) => panic!("a valid layout"),
    };

    impl BufRing {
        /// The buffer group our multishot receives name.
        const GROUP: u16 = 0;

        pub(super) fn register(ring: &IoUring) -> io::Result<BufRing> {
            // SAFETY: neither layout has a size of zero.
            let (entries, bufs) =
                unsafe { (alloc::alloc_zeroed(RING), alloc::alloc(MEMORY)) };
            if entries.is_null() || bufs.is_null() {
                alloc::handle_alloc_error(RING);
            }
            let mut this = BufRing {
                ring: entries.cast(),
                bufs,
                tail: 0,
            };
            // SAFETY: the ring is BUFS zeroed entries, freed only after the
            // io_uring is (see `Drop`).
            unsafe {
                let addr = this.ring as u64;
                ring.submitter().register_buf_ring_with_flags(
                    addr,
                    BUFS,
                    Self::GROUP,
                    0,
                )?;
            }
            for id in 0..BUFS {
                this.give(id);
            }
            Ok(this)
        }

        /// Bytes `start..end` of buffer `id`, which a completion gave us.
        fn bytes(&self, id: u16, start: usize, end: usize) -> &[u8] {
            assert!(id < BUFS && start <= end && end <= BUF_SIZE);
            // SAFETY: in bounds; the kernel does not write to a buffer it gave
            // us until we give it back, which needs `&mut self`.
            unsafe {
                std::slice::from_raw_parts(
                    self.bufs.add(id as usize * BUF_SIZE + start),
                    end - start,
                )
            }
        }

        /// Gives buffer `id` back to the kernel, to fill again.
        pub(super) fn give(&mut self, id: u16) {
            assert!(id < BUFS);
            // SAFETY: the entry at the tail is ours to write, until the tail
            // is moved past it, and the buffer is in bounds.
            unsafe {
                let entry = &mut *self.ring.add((self.tail & (BUFS - 1)) as usize);
                entry.set_addr(self.bufs.add(id as usize * BUF_SIZE) as u64);
                entry.set_len(BUF_SIZE as u32);
                entry.set_bid(id);
                self.tail = self.tail.wrapping_add(1);
                // The kernel reads the tail: the entry must be written first.
                let tail = BufRingEntry::tail(self.ring).cast_mut();
                AtomicU16::from_ptr(tail).store(self.tail, Ordering::Release);
            }
        }
    }

    impl Drop for BufRing {
        /// Frees the buffers. `Server` declares its `ring` before its `bufs`,
        /// so the io_uring is closed, and the kernel done with them, first.
        fn drop(&mut self) {
            // SAFETY: allocated in `register` with these layouts.
            unsafe {
                alloc::dealloc(self.ring.cast(), RING);
                alloc::dealloc(self.bufs, MEMORY);
            }
        }
    }
    // ANCHOR_END: buf_ring

    // ANCHOR: multi
    /// (Step 2) Where a connection's multishot receive is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Multi {
        /// None has been armed yet. The first receive of a connection is a
        /// single one, from the ring too: with a new connection per request it
        /// is the only one, and a multishot receive would need cancelling.
        New,
        /// None is in flight.
        Off,
        /// One is in flight, and completes each time data comes.
        Armed,
        /// One is in flight, with a cancel on its way.
        Stopping,
        /// None is in flight: the ring had no free buffer. The next tick arms
        /// it again (arming it at once could fail at once, in a loop).
        Starved,
    }
    // ANCHOR_END: multi

    impl Server {
        // ANCHOR: multishot
        /// (Step 2) Whether a receive of this connection completing now is its
        /// multishot one.
        pub(super) fn multishot_in_flight(&self, id: u64) -> bool {
            let multi = self.conns.get(&id).map(|entry| entry.multi);
            matches!(multi, Some(Multi::Armed | Multi::Stopping))
        }

        /// (Step 2) Arms the connection's multishot receive: one submission,
        /// and a completion each time data comes, in a buffer of the kernel's
        /// choosing from the ring. (Its first receive is a single one.)
        fn arm(&mut self, id: u64) -> io::Result<()> {
            let entry = self.conns.get_mut(&id).expect("a known connection");
            let first = entry.multi == Multi::New;
            entry.multi = Multi::Armed;
            let (group, len) = (BufRing::GROUP, BUF_SIZE as u32);
            let sqe = if first {
                on!(&entry.socket, |fd| opcode::Recv::new(
                    fd,
                    ptr::null_mut(),
                    len
                )
                .buf_group(group)
                .build()
                .flags(squeue::Flags::BUFFER_SELECT))
            } else {
                on!(&entry.socket, |fd| opcode::RecvMulti::new(fd, group)
                    .build())
            };
            // SAFETY: no buffer of ours; the ring's live as long as the server.
            unsafe { self.push(&sqe.user_data(user_data(id, Op::Recv))) }
        }

        /// (Step 2) Cancels the connection's multishot receive; it ends with
        /// a completion that has no `more` flag.
        pub(super) fn stop(&mut self, id: u64) -> io::Result<()> {
            let entry = self.conns.get_mut(&id).expect("a known connection");
            entry.multi = Multi::Stopping;
            let cancel = opcode::AsyncCancel::new(user_data(id, Op::Recv)).build();
            // SAFETY: no buffer.
            unsafe { self.push(&cancel.user_data(user_data(id, Op::Cancel))) }
        }

        /// (Step 2) The connection's multishot receive completed: with `result`
        /// bytes in the buffer `flags` names, or with the client's end, or an
        /// error. The bytes are held until the connection takes them, which it
        /// does at once unless a send of it is in flight.
        pub(super) fn received(
            &mut self,
            id: u64,
            result: i32,
            flags: u32,
        ) -> io::Result<()> {
            let entry = self.conns.get_mut(&id).expect("checked by the caller");
            if !cqueue::more(flags) {
                entry.multi = Multi::Off; // it has ended
            }
            match (result, cqueue::buffer_select(flags)) {
                (n, Some(buf)) if n > 0 => entry.held.push_back((buf, 0, n as usize)),
                (0, _) => entry.ended = true,
                (e, _) => match Errno::from_raw(-e) {
                    // No free buffer in the ring: it has ended.
                    Errno::ENOBUFS if entry.multi == Multi::Off => {
                        entry.multi = Multi::Starved
                    }
                    Errno::ECANCELED => {} // by `stop`
                    // Before Linux 6.0 the kernel refuses the multishot flag:
                    // from now on, every connection receives into its buffer.
                    Errno::EINVAL if entry.op == Op::Recv => {
                        if self.steps.multishot {
                            eprintln!(
                                "uring: no multishot receive (Linux 6.0); \
                                 receiving into each connection's buffer"
                            );
                            self.steps.multishot = false;
                        }
                        return self.submit(id);
                    }
                    // ECONNRESET and the like: answer what came before, if the
                    // client still takes it, then close.
                    _ => entry.ended = true,
                },
            }
            if entry.op == Op::Cancel {
                // Given up: wait for the multishot receive to end, then close.
                return self.close(id);
            }
            if entry.held.len() > HELD_MAX && entry.multi == Multi::Armed {
                self.stop(id)?; // armed again once the connection takes them
            }
            self.feed(id)
        }

        /// (Step 2) Hands the connection the bytes held for it, if it waits
        /// for a request, and gives their buffers back to the ring; then, with
        /// nothing held, arms its multishot receive if none is.
        pub(super) fn feed(&mut self, id: u64) -> io::Result<()> {
            let entry = self.conns.get_mut(&id).expect("a known connection");
            let bufs = self.bufs.as_mut().expect("step 2 has its ring");
            while entry.op == Op::Recv {
                if Instant::now() >= entry.conn.deadline() {
                    return self.close(id); // past its deadline: given up
                }
                let Some((buf, start, end)) = entry.held.front_mut() else {
                    return match entry.multi {
                        _ if entry.ended => self.close(id),
                        Multi::New | Multi::Off => self.arm(id),
                        _ => Ok(()),
                    };
                };
                // A copy into the connection's own buffer, as a `read` makes.
                let space = entry.conn.space();
                let n = space.len().min(*end - *start);
                space[..n].copy_from_slice(bufs.bytes(*buf, *start, *start + n));
                *start += n;
                if start == end {
                    bufs.give(*buf);
                    entry.held.pop_front();
                }
                match entry.conn.received(n) {
                    Interest::Read => {}
                    Interest::Write => {
                        entry.op = Op::Send;
                        return self.submit(id);
                    }
                    Interest::Close => return self.close(id),
                }
            }
            Ok(()) // a send of it is in flight: its completion feeds it again
        }
        // ANCHOR_END: multishot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_is_listed_once() {
        // A match without a wildcard: a new variant does not compile here
        // until it is named, which is the reminder to list it in ALL.
        let named = |op: Op| match op {
            Op::Accept | Op::Resume | Op::Tick | Op::Recv => op,
            Op::Send | Op::Cancel | Op::Done | Op::Shut => op,
        };
        for (i, op) in Op::ALL.into_iter().enumerate() {
            assert_eq!(named(op), op);
            assert_ne!(op as u8, 0, "{op:?}: 0 is no code");
            assert!(!Op::ALL[..i].contains(&op), "{op:?} twice");
        }
    }

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
