//! One worker thread: a fixed number of connection slots, each carrying one
//! request at a time, and one edge-triggered epoll instance that says which
//! of them can make progress.
//!
//! Closed loop, a slot starts its next request as soon as its last one
//! ends, claiming it from a counter that all workers share.
//!
//! Open loop, requests start on a schedule. This worker takes its share of
//! it (every `step`-th request), each due at a fixed time. A due request
//! goes to the slot that has been free the longest (an idle keep-alive
//! connection, or an empty place for a new one), or, when every slot is
//! busy, waits in the worker until one is free. A timerfd, armed at the
//! next due time and registered in the same epoll instance, wakes the
//! worker to the microsecond without spinning.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use socket2::{SockAddr, Socket, Type};

use crate::histogram::Recorder;
use crate::response::{Response, Want};
use crate::{Config, Failures, Kind, Start};

/// How often expired requests are looked for, and so the most an
/// `epoll_wait` blocks: timeouts are enforced to within about this much.
const TICK: Duration = Duration::from_millis(10);

/// The bytes one read takes at most.
const READ_SIZE: usize = 16 * 1024;

/// The epoll token of an open-loop worker's timer; a slot's is its index.
const TIMER: u64 = u64::MAX;

/// What all workers share: the work to do, and the counter that hands it
/// out in closed loop.
pub(crate) struct Shared {
    addr: SockAddr,
    request: Vec<u8>,
    want: Want,
    keep_alive: bool,
    timeout: Duration,
    requests: u64,
    duration: Option<Duration>,
    /// Open loop: nanoseconds from one request of the schedule to the next.
    interval: f64,
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
            duration: config.duration,
            interval: config.rate.map_or(0.0, |rate| 1e9 / rate),
            claimed: AtomicU64::new(0),
        })
    }
}

/// A worker's share of an open-loop schedule: requests `first`,
/// `first + step`, `first + 2 * step`, ... below `total`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Share {
    pub first: u64,
    pub step: u64,
    pub total: u64,
}

/// One worker's counts, added up into the report at the end.
#[derive(Default)]
pub(crate) struct Tally {
    /// Requests attempted: each ends up completed or failed.
    pub requests: u64,
    pub completed: u64,
    pub failures: Failures,
    pub connections: u64,
    pub bytes: u64,
    pub body_bytes: u64,
    /// From the send (connect, or write on a reused connection) to the end.
    pub latency: Recorder,
    /// Requests completed in each slot.
    pub per_slot: Vec<u64>,
    pub open: Option<OpenTally>,
}

/// What only an open-loop worker counts.
#[derive(Default)]
pub(crate) struct OpenTally {
    pub sent: u64,
    pub unsent: u64,
    /// From the start of the run to the last request sent.
    pub last_sent: Duration,
    /// From due to the end of the response.
    pub corrected: Recorder,
    /// From due to sent.
    pub send_delay: Recorder,
    /// From due with a free slot to sent.
    pub schedule_lag: Recorder,
}

impl Tally {
    /// Adds another worker's counts to these.
    pub(crate) fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.completed += other.completed;
        self.failures.merge(&other.failures);
        self.connections += other.connections;
        self.bytes += other.bytes;
        self.body_bytes += other.body_bytes;
        self.latency.merge(&other.latency);
        self.per_slot.extend(other.per_slot);
        if let Some(theirs) = other.open {
            let ours = self.open.get_or_insert_with(OpenTally::default);
            ours.sent += theirs.sent;
            ours.unsent += theirs.unsent;
            ours.last_sent = ours.last_sent.max(theirs.last_sent);
            ours.corrected.merge(&theirs.corrected);
            ours.send_delay.merge(&theirs.send_delay);
            ours.schedule_lag.merge(&theirs.schedule_lag);
        }
    }

    /// A complete and right response in `slot`.
    #[inline]
    fn complete(&mut self, slot: usize, conn: &Conn, done: Instant, body: u64) {
        self.completed += 1;
        self.body_bytes += body;
        self.per_slot[slot] += 1;
        self.latency
            .record(done.saturating_duration_since(conn.started));
        if let Some(open) = &mut self.open {
            open.corrected
                .record(done.saturating_duration_since(conn.due));
        }
    }
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
    Draining { done: Instant, body: u64 },
    /// Open loop, keep-alive: between requests, waiting for the next one
    /// to fall due.
    Idle,
}

/// How a request ended.
enum End {
    /// Complete and right, and the connection can carry another request.
    Reusable {
        done: Instant,
        body: u64,
    },
    /// Complete and right; the connection is over.
    Complete {
        done: Instant,
        body: u64,
    },
    Failed(Kind),
}

/// A connection and the request it carries.
struct Conn {
    stream: TcpStream,
    state: State,
    /// When the request was sent: the connect, or the write on a reused
    /// connection.
    started: Instant,
    /// Open loop: when the request was due. Closed loop: `started`.
    due: Instant,
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
                    Ok(Some(response)) => {
                        let done = Instant::now();
                        let body = response.body;
                        if eof {
                            return Some(End::Complete { done, body });
                        }
                        if shared.keep_alive && !response.close {
                            return Some(End::Reusable { done, body });
                        }
                        self.state = State::Draining { done, body };
                    }
                },
                // After a complete response, only the close may come.
                State::Draining { .. } if n > 0 => return Some(End::Failed(Kind::Length)),
                State::Draining { done, body } if eof => {
                    return Some(End::Complete { done, body });
                }
                State::Draining { .. } => {}
                State::Writing { .. } | State::Idle => {
                    unreachable!("reading with no request out")
                }
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

    /// An idle keep-alive connection had an event: true if it is over (the
    /// server closed it, reset it, or sent something nobody asked for).
    /// Nothing was asked on it, so nothing failed.
    fn idle_event(&mut self, flags: EpollFlags, buf: &mut [u8], tally: &mut Tally) -> bool {
        let readable = EpollFlags::EPOLLIN
            | EpollFlags::EPOLLERR
            | EpollFlags::EPOLLHUP
            | EpollFlags::EPOLLRDHUP;
        if !flags.intersects(readable) {
            return false;
        }
        loop {
            match self.stream.read(buf) {
                Ok(n) => {
                    tally.bytes += n as u64;
                    return true;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(_) => return true,
            }
        }
    }

    /// Puts the next request on this connection.
    fn reuse(&mut self, shared: &Shared, started: Instant, due: Instant) -> Result<(), Kind> {
        self.started = started;
        self.due = due;
        self.deadline = started + shared.timeout;
        self.state = State::Writing { sent: 0 };
        self.response.clear();
        self.write(&shared.request).map(drop)
    }
}

/// What both kinds of worker have: the slots, the epoll instance, the
/// counts.
struct Core<'a> {
    shared: &'a Shared,
    epoll: Epoll,
    /// The connection in each slot; the slot's index is its epoll token.
    slots: Vec<Option<Conn>>,
    /// Requests in flight.
    active: usize,
    buf: Box<[u8]>,
    tally: Tally,
}

impl<'a> Core<'a> {
    fn new(shared: &'a Shared, slots: usize) -> io::Result<Core<'a>> {
        Ok(Core {
            shared,
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
            slots: (0..slots).map(|_| None).collect(),
            active: 0,
            buf: vec![0; READ_SIZE].into_boxed_slice(),
            tally: Tally {
                per_slot: vec![0; slots],
                ..Tally::default()
            },
        })
    }

    /// Waits for events (at most a [`TICK`]) into `events`.
    fn wait(&self, events: &mut [EpollEvent]) -> io::Result<usize> {
        match self.epoll.wait(events, TICK.as_millis() as u16) {
            Ok(n) => Ok(n),
            Err(Errno::EINTR) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether the slot's request is past its deadline.
    fn expired(&self, slot: usize, now: Instant) -> bool {
        self.slots[slot]
            .as_ref()
            .is_some_and(|c| c.state != State::Idle && c.deadline <= now)
    }

    /// Closes the slot's connection, if any.
    fn close(&mut self, slot: usize) {
        // Dropping the stream closes it, which also takes it out of epoll.
        if let Some(conn) = self.slots[slot].take() {
            self.active -= usize::from(conn.state != State::Idle);
            self.tally.connections += u64::from(conn.established);
        }
    }

    /// Starts a request in a free slot: on its idle connection, or on a new
    /// one.
    fn start(&mut self, slot: usize, started: Instant, due: Instant) -> Result<(), Kind> {
        if let Some(conn) = &mut self.slots[slot] {
            self.active += 1;
            let result = conn.reuse(self.shared, started, due);
            if result.is_err() {
                self.close(slot);
            }
            return result;
        }
        let conn = self.connect(slot, started, due)?;
        self.slots[slot] = Some(conn);
        self.active += 1;
        Ok(())
    }

    /// Starts a connection and, optimistically, the request on it.
    fn connect(&mut self, slot: usize, started: Instant, due: Instant) -> Result<Conn, Kind> {
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
            due,
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

/// A worker, of either kind.
pub(crate) enum Worker<'a> {
    Closed(ClosedWorker<'a>),
    Open(OpenWorker<'a>),
}

impl<'a> Worker<'a> {
    /// A worker with `slots` connection slots: open loop if it has a share
    /// of a schedule.
    pub(crate) fn new(
        shared: &'a Shared,
        slots: usize,
        share: Option<Share>,
    ) -> io::Result<Worker<'a>> {
        let core = Core::new(shared, slots)?;
        Ok(match share {
            None => Worker::Closed(ClosedWorker {
                core,
                deadline: None,
            }),
            Some(share) => Worker::Open(OpenWorker::new(core, share)?),
        })
    }

    /// Runs from `start` until its work is done.
    pub(crate) fn run(self, start: Start) -> io::Result<Tally> {
        match self {
            Worker::Closed(w) => w.run(start),
            Worker::Open(w) => w.run(start),
        }
    }
}

/// A closed-loop worker.
pub(crate) struct ClosedWorker<'a> {
    core: Core<'a>,
    /// No request starts after this.
    deadline: Option<Instant>,
}

impl ClosedWorker<'_> {
    fn run(mut self, start: Start) -> io::Result<Tally> {
        self.deadline = self.core.shared.duration.map(|d| start.instant + d);
        for slot in 0..self.core.slots.len() {
            self.open(slot);
        }
        let mut events = vec![EpollEvent::empty(); self.core.slots.len().clamp(1, 1024)];
        let mut next_sweep = Instant::now() + TICK;
        while self.core.active > 0 {
            let n = self.core.wait(&mut events)?;
            for event in &events[..n] {
                self.on_event(event.data() as usize, event.events());
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + TICK;
            }
        }
        Ok(self.core.tally)
    }

    /// Claims the right to start one more request: true exactly
    /// `requests` times, whichever workers ask, and never after the
    /// deadline.
    #[inline]
    fn claim(&mut self) -> bool {
        if self.deadline.is_some_and(|end| Instant::now() >= end) {
            return false;
        }
        let shared = self.core.shared;
        let yes = shared.claimed.fetch_add(1, Ordering::Relaxed) < shared.requests;
        self.core.tally.requests += u64::from(yes);
        yes
    }

    fn on_event(&mut self, slot: usize, flags: EpollFlags) {
        let core = &mut self.core;
        let Some(conn) = &mut core.slots[slot] else {
            return;
        };
        let end = match conn.advance(flags, &mut core.buf, core.shared, &mut core.tally) {
            None => return,
            Some(End::Reusable { done, body }) => {
                core.tally.complete(slot, conn, done, body);
                if !self.claim() {
                    return self.core.close(slot);
                }
                let core = &mut self.core;
                let conn = core.slots[slot].as_mut().expect("still there");
                let now = Instant::now();
                match conn.reuse(core.shared, now, now) {
                    Ok(()) => return,
                    Err(kind) => kind,
                }
            }
            Some(End::Complete { done, body }) => {
                core.tally.complete(slot, conn, done, body);
                return self.replace(slot);
            }
            Some(End::Failed(kind)) => kind,
        };
        self.core.tally.failures.add(end);
        self.replace(slot);
    }

    /// Fails every request past its deadline.
    fn sweep(&mut self, now: Instant) {
        for slot in 0..self.core.slots.len() {
            if self.core.expired(slot, now) {
                self.core.tally.failures.add(Kind::Timeout);
                self.replace(slot);
            }
        }
    }

    /// Closes the slot's connection and starts its next request, if any.
    fn replace(&mut self, slot: usize) {
        self.core.close(slot);
        self.open(slot);
    }

    /// Claims requests for an empty slot until one gets going.
    fn open(&mut self, slot: usize) {
        while self.claim() {
            let now = Instant::now();
            match self.core.start(slot, now, now) {
                Ok(()) => return,
                Err(kind) => self.core.tally.failures.add(kind),
            }
        }
    }
}

/// An open-loop worker.
pub(crate) struct OpenWorker<'a> {
    core: Core<'a>,
    share: Share,
    /// The next request of this worker's share to start.
    next: u64,
    start: Start,
    timer: TimerFd,
    /// When the timer is set to go off, if it is.
    armed: Option<Instant>,
    /// Slots with no request in flight, and since when, the longest free
    /// first.
    free: VecDeque<(usize, Instant)>,
}

impl<'a> OpenWorker<'a> {
    fn new(mut core: Core<'a>, share: Share) -> io::Result<OpenWorker<'a>> {
        let timer = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // Edge-triggered, and never read: setting the timer again clears
        // its expiry, and its next expiry is a new edge.
        core.epoll.add(
            &timer,
            EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLET, TIMER),
        )?;
        core.tally.open = Some(OpenTally::default());
        let slots = core.slots.len();
        Ok(OpenWorker {
            core,
            share,
            next: share.first,
            start: crate::Start {
                instant: Instant::now(),
                monotonic: TimeSpec::new(0, 0),
            },
            timer,
            armed: None,
            free: VecDeque::with_capacity(slots),
        })
    }

    fn run(mut self, start: Start) -> io::Result<Tally> {
        self.start = start;
        self.free
            .extend((0..self.core.slots.len()).map(|slot| (slot, start.instant)));
        self.dispatch(Instant::now())?;
        let mut events = vec![EpollEvent::empty(); (self.core.slots.len() + 1).clamp(2, 1024)];
        let mut next_sweep = Instant::now() + TICK;
        while self.next < self.share.total || self.core.active > 0 {
            let n = self.core.wait(&mut events)?;
            let mut woken = false;
            for event in &events[..n] {
                match event.data() {
                    TIMER => woken = true,
                    slot => self.on_event(slot as usize, event.events())?,
                }
            }
            if woken {
                // It went off. (If a dispatch since set it again, for
                // later, the next dispatch sets it once more, which is
                // harmless.)
                self.armed = None;
                self.dispatch(Instant::now())?;
            }
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now)?;
                next_sweep = now + TICK;
            }
        }
        // What is left are idle keep-alive connections.
        for slot in 0..self.core.slots.len() {
            self.core.close(slot);
        }
        Ok(self.core.tally)
    }

    /// When request `i` of the schedule is due, after the start.
    #[inline]
    fn offset(&self, i: u64) -> Duration {
        Duration::from_nanos((i as f64 * self.core.shared.interval) as u64)
    }

    fn open_tally(tally: &mut Tally) -> &mut OpenTally {
        tally.open.as_mut().expect("an open-loop tally")
    }

    /// Starts every request that is due by `now` or falls due meanwhile,
    /// as far as there are free slots, and sets the timer for the next one.
    fn dispatch(&mut self, mut now: Instant) -> io::Result<()> {
        let timeout = self.core.shared.timeout;
        while self.next < self.share.total {
            let offset = self.offset(self.next);
            let due = self.start.instant + offset;
            if due > now {
                // Not yet. With no free slot, a slot freeing up calls us
                // again anyway.
                if !self.free.is_empty() && self.armed != Some(due) {
                    let at = self.start.monotonic + TimeSpec::from_duration(offset);
                    self.timer.set(
                        Expiration::OneShot(at),
                        TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                    )?;
                    self.armed = Some(due);
                }
                return Ok(());
            }
            if now.saturating_duration_since(due) >= timeout {
                // It waited for a slot as long as a request may take.
                self.next += self.share.step;
                self.core.tally.requests += 1;
                self.core.tally.failures.add(Kind::Timeout);
                Self::open_tally(&mut self.core.tally).unsent += 1;
                continue;
            }
            let Some((slot, free_since)) = self.free.pop_front() else {
                return Ok(());
            };
            self.next += self.share.step;
            self.core.tally.requests += 1;
            let started = Instant::now();
            let open = Self::open_tally(&mut self.core.tally);
            open.sent += 1;
            open.last_sent = started.saturating_duration_since(self.start.instant);
            open.send_delay
                .record(started.saturating_duration_since(due));
            open.schedule_lag
                .record(started.saturating_duration_since(due.max(free_since)));
            if let Err(kind) = self.core.start(slot, started, due) {
                self.core.tally.failures.add(kind);
                self.free.push_back((slot, Instant::now()));
            }
            now = Instant::now();
        }
        Ok(())
    }

    fn on_event(&mut self, slot: usize, flags: EpollFlags) -> io::Result<()> {
        let core = &mut self.core;
        let Some(conn) = &mut core.slots[slot] else {
            return Ok(());
        };
        if conn.state == State::Idle {
            // Still in the free queue, whether it closes or not: the next
            // request there connects anew.
            if conn.idle_event(flags, &mut core.buf, &mut core.tally) {
                core.close(slot);
            }
            return Ok(());
        }
        match conn.advance(flags, &mut core.buf, core.shared, &mut core.tally) {
            None => return Ok(()),
            Some(End::Reusable { done, body }) => {
                core.tally.complete(slot, conn, done, body);
                conn.state = State::Idle;
                core.active -= 1;
            }
            Some(End::Complete { done, body }) => {
                core.tally.complete(slot, conn, done, body);
                core.close(slot);
            }
            Some(End::Failed(kind)) => {
                core.tally.failures.add(kind);
                core.close(slot);
            }
        }
        // Free from now: after a response in close mode, only once the
        // server has closed.
        let now = Instant::now();
        self.free.push_back((slot, now));
        self.dispatch(now)
    }

    /// Fails every request past its deadline, and starts what is due in
    /// the slots that frees. (Every tick, whatever it freed: should a
    /// wake-up ever go missing, the schedule goes on a tick later.)
    fn sweep(&mut self, now: Instant) -> io::Result<()> {
        for slot in 0..self.core.slots.len() {
            if self.core.expired(slot, now) {
                self.core.tally.failures.add(Kind::Timeout);
                self.core.close(slot);
                self.free.push_back((slot, now));
            }
        }
        self.dispatch(now)
    }
}
