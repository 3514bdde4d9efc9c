//! One worker thread: a fixed number of connection slots, each carrying one
//! request at a time, and one edge-triggered epoll instance that says which
//! of them can make progress.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use socket2::{SockAddr, Socket, Type};

use crate::response::{Response, Want};
use crate::{Config, Failures, Kind};

/// How often expired requests are looked for, and so the most an
/// `epoll_wait` blocks: timeouts are enforced to within about this much.
const TICK: Duration = Duration::from_millis(10);

/// The bytes one read takes at most.
const READ_SIZE: usize = 16 * 1024;

/// What all workers share: the work to do, and the counter that hands it out.
pub(crate) struct Shared {
    addr: SockAddr,
    request: Vec<u8>,
    want: Want,
    keep_alive: bool,
    timeout: Duration,
    requests: u64,
    claimed: AtomicU64,
}

impl Shared {
    pub(crate) fn new(config: &Config) -> io::Result<Shared> {
        Ok(Shared {
            addr: config.addr.into(),
            request: config.request()?,
            want: Want::new(&config.expect, config.keep_alive),
            keep_alive: config.keep_alive,
            timeout: config.timeout,
            requests: config.requests,
            claimed: AtomicU64::new(0),
        })
    }

    /// Claims the right to start one more request: true exactly
    /// `requests` times, whichever workers ask.
    fn claim(&self) -> bool {
        self.claimed.fetch_add(1, Ordering::Relaxed) < self.requests
    }
}

/// One worker's counts, added up into the report at the end.
#[derive(Default)]
pub(crate) struct Tally {
    pub completed: u64,
    pub failures: Failures,
    pub connections: u64,
    pub bytes: u64,
    pub body_bytes: u64,
    pub latencies: Vec<Duration>,
}

/// Where a connection is in its current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Sending the request; `sent` bytes are out.
    Writing { sent: usize },
    /// Waiting for (the rest of) the response.
    Reading,
    /// The response is complete and right; waiting for the server to close,
    /// so that the server, which closes first, keeps the TIME_WAIT.
    Draining { latency: Duration, body: u64 },
}

/// How a request ended.
enum End {
    /// Complete and right, and the connection can carry another request.
    Reusable {
        latency: Duration,
        body: u64,
    },
    /// Complete and right; the connection is over.
    Complete {
        latency: Duration,
        body: u64,
    },
    Failed(Kind),
}

/// A connection and the request it carries.
struct Conn {
    stream: TcpStream,
    state: State,
    /// When the request started: the connect, or the write on a reused
    /// connection.
    started: Instant,
    deadline: Instant,
    /// A write has succeeded, so the connect did: a failure before that is
    /// a connect failure, and only established connections are counted.
    established: bool,
    response: Response,
}

impl Conn {
    /// Writes what is left of the request. `Ok(true)`: all of it is out.
    fn write(&mut self, request: &[u8]) -> Result<bool, Kind> {
        while let State::Writing { sent } = &mut self.state {
            if *sent == request.len() {
                self.state = State::Reading;
                return Ok(true);
            }
            match self.stream.write(&request[*sent..]) {
                Ok(0) => return Err(Kind::Write),
                Ok(n) => {
                    *sent += n;
                    self.established = true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // Still connecting, or the send buffer is full: the socket is
                // registered for writability, so epoll says when to go on.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(_) if self.established => return Err(Kind::Write),
                Err(_) => return Err(Kind::Connect),
            }
        }
        Ok(true)
    }

    /// Reads what has arrived. `None`: the request goes on.
    ///
    /// `hup` says epoll saw the server shut down its side: once a read comes
    /// back short (it took everything queued), that read reached the end,
    /// and the extra read that would return 0 can be skipped.
    fn read(
        &mut self,
        buf: &mut [u8],
        hup: bool,
        shared: &Shared,
        tally: &mut Tally,
    ) -> Option<End> {
        loop {
            let n = match self.stream.read(buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
                // A reset, mostly.
                Err(_) => return Some(End::Failed(Kind::Read)),
            };
            tally.bytes += n as u64;
            // A short read emptied the queue: more can only come with a new
            // edge, which epoll will report. No need to read until EAGAIN.
            let drained = n < buf.len();
            let eof = n == 0 || (hup && drained);
            match self.state {
                State::Reading => match self.response.feed(&buf[..n], &shared.want) {
                    Err(kind) => return Some(End::Failed(kind)),
                    Ok(None) if eof => return Some(End::Failed(self.response.cut_short())),
                    Ok(None) => {}
                    Ok(Some(done)) => {
                        let latency = self.started.elapsed();
                        let body = done.body;
                        if eof {
                            return Some(End::Complete { latency, body });
                        }
                        if shared.keep_alive && !done.close {
                            return Some(End::Reusable { latency, body });
                        }
                        self.state = State::Draining { latency, body };
                    }
                },
                // After a complete response, only the close may come.
                State::Draining { .. } if n > 0 => return Some(End::Failed(Kind::Length)),
                State::Draining { latency, body } if eof => {
                    return Some(End::Complete { latency, body });
                }
                State::Draining { .. } => {}
                State::Writing { .. } => unreachable!("reading before the request is out"),
            }
            if drained {
                return None;
            }
        }
    }

    /// Goes on with the request as far as the event allows.
    fn advance(
        &mut self,
        flags: EpollFlags,
        buf: &mut [u8],
        shared: &Shared,
        tally: &mut Tally,
    ) -> Option<End> {
        let hup = flags.intersects(EpollFlags::EPOLLRDHUP | EpollFlags::EPOLLHUP);
        if let State::Writing { .. } = self.state {
            // Whatever the event says (connected, room to write, an error),
            // the write tells what it means for us.
            match self.write(&shared.request) {
                Ok(true) => {}
                Ok(false) => return None,
                Err(kind) => return Some(End::Failed(kind)),
            }
        }
        // A registration reports writability too; that alone is no reason
        // to try a read, which would only say EAGAIN.
        let readable = EpollFlags::EPOLLIN | EpollFlags::EPOLLERR;
        if flags.intersects(readable) || hup {
            self.read(buf, hup, shared, tally)
        } else {
            None
        }
    }

    /// Puts the next request on this connection.
    fn reuse(&mut self, shared: &Shared) -> Result<(), Kind> {
        self.started = Instant::now();
        self.deadline = self.started + shared.timeout;
        self.state = State::Writing { sent: 0 };
        self.response.clear();
        self.write(&shared.request).map(drop)
    }
}

/// A worker: its slots, its epoll instance, its counts.
pub(crate) struct Worker<'a> {
    shared: &'a Shared,
    epoll: Epoll,
    /// The connection in each slot; the slot's index is its epoll token.
    slots: Vec<Option<Conn>>,
    /// Slots with a connection: the run ends for this worker at zero.
    active: usize,
    buf: Box<[u8]>,
    tally: Tally,
}

impl<'a> Worker<'a> {
    pub(crate) fn new(shared: &'a Shared, slots: usize) -> io::Result<Worker<'a>> {
        Ok(Worker {
            shared,
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            slots: (0..slots).map(|_| None).collect(),
            active: 0,
            buf: vec![0; READ_SIZE].into_boxed_slice(),
            tally: Tally::default(),
        })
    }

    pub(crate) fn run(mut self) -> io::Result<Tally> {
        for slot in 0..self.slots.len() {
            self.open(slot);
        }
        let mut events = vec![EpollEvent::empty(); self.slots.len().clamp(1, 1024)];
        let tick_ms = TICK.as_millis() as u16;
        let mut next_sweep = Instant::now() + TICK;
        while self.active > 0 {
            let n = match self.epoll.wait(&mut events, tick_ms) {
                Ok(n) => n,
                Err(Errno::EINTR) => 0,
                Err(e) => return Err(e.into()),
            };
            for event in &events[..n] {
                self.on_event(event.data() as usize, event.events());
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + TICK;
            }
        }
        Ok(self.tally)
    }

    fn on_event(&mut self, slot: usize, flags: EpollFlags) {
        let Some(conn) = &mut self.slots[slot] else {
            return;
        };
        let end = match conn.advance(flags, &mut self.buf, self.shared, &mut self.tally) {
            None => return,
            Some(End::Reusable { latency, body }) => {
                self.tally.complete(latency, body);
                if !self.shared.claim() {
                    return self.close(slot);
                }
                match conn.reuse(self.shared) {
                    Ok(()) => return,
                    Err(kind) => kind,
                }
            }
            Some(End::Complete { latency, body }) => {
                self.tally.complete(latency, body);
                return self.replace(slot);
            }
            Some(End::Failed(kind)) => kind,
        };
        self.tally.failures.add(end);
        self.replace(slot);
    }

    /// Fails every request past its deadline.
    fn sweep(&mut self, now: Instant) {
        for slot in 0..self.slots.len() {
            if self.slots[slot].as_ref().is_some_and(|c| c.deadline <= now) {
                self.tally.failures.add(Kind::Timeout);
                self.replace(slot);
            }
        }
    }

    /// Closes the slot's connection and starts its next request, if any.
    fn replace(&mut self, slot: usize) {
        self.close(slot);
        self.open(slot);
    }

    fn close(&mut self, slot: usize) {
        // Dropping the stream closes it, which also takes it out of epoll.
        if let Some(conn) = self.slots[slot].take() {
            self.active -= 1;
            self.tally.connections += u64::from(conn.established);
        }
    }

    /// Claims requests for an empty slot until one gets going.
    fn open(&mut self, slot: usize) {
        while self.shared.claim() {
            match self.connect(slot) {
                Ok(conn) => {
                    self.slots[slot] = Some(conn);
                    self.active += 1;
                    return;
                }
                Err(kind) => self.tally.failures.add(kind),
            }
        }
    }

    /// Starts a connection and, optimistically, the request on it.
    fn connect(&mut self, slot: usize) -> Result<Conn, Kind> {
        let started = Instant::now();
        let addr = &self.shared.addr;
        let socket = Socket::new(addr.domain(), Type::STREAM.nonblocking(), None)
            .map_err(|_| Kind::Connect)?;
        match socket.connect(addr) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(Errno::EINPROGRESS as i32) => {}
            Err(_) => return Err(Kind::Connect),
        }
        // No TCP_NODELAY: each request goes out in one write while nothing
        // of ours is unacknowledged, which Nagle's algorithm never delays.
        let stream = TcpStream::from(socket);
        // Registered once for everything, edge-triggered: no epoll_ctl for
        // this socket ever again. Closing it unregisters it.
        let interest = EpollFlags::EPOLLIN
            | EpollFlags::EPOLLOUT
            | EpollFlags::EPOLLRDHUP
            | EpollFlags::EPOLLET;
        self.epoll
            .add(&stream, EpollEvent::new(interest, slot as u64))
            .map_err(|_| Kind::Connect)?;
        let mut conn = Conn {
            stream,
            state: State::Writing { sent: 0 },
            started,
            deadline: started + self.shared.timeout,
            established: false,
            response: Response::default(),
        };
        // On loopback the handshake is usually done by now, so the request
        // goes out at once; if not, EPOLLOUT will say when.
        if let Err(kind) = conn.write(&self.shared.request) {
            self.tally.connections += u64::from(conn.established);
            return Err(kind);
        }
        Ok(conn)
    }
}

impl Tally {
    fn complete(&mut self, latency: Duration, body: u64) {
        self.completed += 1;
        self.body_bytes += body;
        self.latencies.push(latency);
    }
}
