//! Half-sync/half-async: the epoll loop of the `epoll` server, which never
//! blocks, and a fixed pool of threads that does the work requests ask for
//! (`/cpu/N`, `/sleep/N`), which may. The loop hands each such request to
//! the pool and goes on with the other connections; a worker that is done
//! says so through an eventfd the loop watches with its sockets.
//!
//! Run it with `cargo run --release -p epoll-offload -- [ADDR [N]]`: it
//! listens on ADDR (default `127.0.0.1:9527`) with N workers (default: one
//! per core).

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use conn::{ACCEPT_BATCH, Acceptor, Conn, Interest};
use nix::errno::Errno;
use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};
use nix::sys::eventfd::{EfdFlags, EventFd};
use wire::Work;

// ANCHOR: main
fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next();
    let size = wire::workers(args.next())?;
    let listener = wire::listen(addr.as_deref())?;
    let pool = Pool::new(size)?;
    println!("listening on http://{}", listener.local_addr()?);
    // Returns only if epoll itself fails.
    serve(listener, pool)
}
// ANCHOR_END: main

// ANCHOR: pool
/// A job: the work one request asks for, and which connection it is for.
struct Job {
    work: Work,
    conn: Token,
}

/// A connection, as a job knows it: its descriptor, and the number the
/// loop gave it when it was accepted. The descriptor alone is not enough:
/// the connection may be closed while its job runs, and the descriptor
/// given to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Token {
    fd: usize,
    serial: u64,
}

/// The workers, the queue that feeds them, and the way back: a queue of
/// finished jobs, and an eventfd, a counter in the kernel that epoll sees
/// as readable while it is above zero.
struct Pool {
    jobs: Sender<Job>,
    done: Receiver<Token>,
    wake: Arc<EventFd>,
}

impl Pool {
    /// Starts `size` workers. The queue of jobs has no bound: the loop
    /// must never wait to hand off, and a connection has at most one job
    /// at a time, so there are never more jobs than connections.
    fn new(size: usize) -> io::Result<Pool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let (finished, done) = mpsc::channel();
        let flags = EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK;
        let wake = Arc::new(EventFd::from_flags(flags)?);
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..size {
            let (queue, finished, wake) =
                (queue.clone(), finished.clone(), wake.clone());
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || work(&queue, &finished, &wake))?;
        }
        Ok(Pool { jobs, done, wake })
    }
}

/// What each worker does, for as long as the loop lives: take a job, do
/// it, report it, and add one to the eventfd's counter, which wakes the
/// loop if it sleeps in `epoll_wait`.
fn work(queue: &Mutex<Receiver<Job>>, finished: &Sender<Token>, wake: &EventFd) {
    loop {
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = next else {
            return; // the loop is gone
        };
        job.work.run();
        if finished.send(job.conn).is_err() {
            return;
        }
        // Cannot fail: the counter would have to reach 2^64 - 1.
        let _ = wake.write(1);
    }
}
// ANCHOR_END: pool

// ANCHOR: state
/// The tokens epoll hands back with the listening socket's events, and
/// with the eventfd's. A connection's token is its file descriptor.
const LISTENER: u64 = u64::MAX;
const DONE: u64 = u64::MAX - 1;

/// The most events one `epoll_wait` returns; any more wait for the next.
const EVENTS: usize = 1024;

/// How often the loop closes the connections whose deadline has passed.
const SWEEP: Duration = Duration::from_millis(250);

/// One open connection, as in the `epoll` server, and whether its job is
/// out with the pool.
struct Entry {
    stream: TcpStream,
    conn: Conn,
    serial: u64,
    busy: bool,
    /// What epoll watches it for.
    flags: EpollFlags,
}

struct Loop {
    epoll: Epoll,
    acceptor: Acceptor,
    pool: Pool,
    conns: Vec<Option<Entry>>,
    open: usize,
    /// The serial number of the next connection accepted.
    serial: u64,
}
// ANCHOR_END: state

// ANCHOR: serve
fn serve(listener: TcpListener, pool: Pool) -> io::Result<()> {
    let mut l = Loop {
        epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
        acceptor: Acceptor::new(listener)?,
        pool,
        conns: Vec::new(),
        open: 0,
        serial: 0,
    };
    let listening = EpollEvent::new(EpollFlags::EPOLLIN, LISTENER);
    l.epoll.add(l.acceptor.listener(), listening)?;
    l.epoll
        .add(&*l.pool.wake, EpollEvent::new(EpollFlags::EPOLLIN, DONE))?;

    let mut events = vec![EpollEvent::empty(); EVENTS];
    let mut next_sweep = Instant::now() + SWEEP;
    loop {
        let timeout = if l.open == 0 {
            EpollTimeout::NONE
        } else {
            conn::epoll_timeout(next_sweep)
        };
        let n = match l.epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        for event in &events[..n] {
            match event.data() {
                LISTENER => l.accept(),
                DONE => l.finished(),
                fd => l.ready(fd as usize, event.events()),
            }
        }
        let now = Instant::now();
        if now >= next_sweep {
            l.sweep(now);
            next_sweep = now + SWEEP;
        }
    }
}
// ANCHOR_END: serve

impl Loop {
    // ANCHOR: accept
    /// Takes the connections waiting, as `epoll` does, each handing off
    /// its work.
    fn accept(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            let Some(stream) = self.acceptor.accept() else {
                return;
            };
            let mut conn = Conn::handing_off(Instant::now());
            let next = conn.on_ready(&stream);
            if next == Interest::Close {
                continue;
            }
            // Watched for nothing yet: `drive` says what it waits for.
            let fd = stream.as_raw_fd() as usize;
            let event = EpollEvent::new(EpollFlags::empty(), fd as u64);
            if self.epoll.add(&stream, event).is_err() {
                continue;
            }
            if fd >= self.conns.len() {
                self.conns.resize_with(fd + 1, || None);
            }
            self.serial += 1;
            let (serial, busy, flags) = (self.serial, false, EpollFlags::empty());
            self.conns[fd] = Some(Entry {
                stream,
                conn,
                serial,
                busy,
                flags,
            });
            self.open += 1;
            self.drive(fd, next);
        }
    }
    // ANCHOR_END: accept

    // ANCHOR: ready
    /// A socket is ready: the connection does what it can, as in `epoll`.
    fn ready(&mut self, fd: usize, events: EpollFlags) {
        let Some(entry) = self.conns.get_mut(fd).and_then(Option::as_mut) else {
            return;
        };
        let next = entry.conn.on_ready(&entry.stream);
        if events.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR) {
            return self.close(fd);
        }
        self.drive(fd, next);
    }

    /// The pool has finished jobs: each connection still there gets its
    /// response, and goes on with the requests that came after it.
    fn finished(&mut self) {
        // First the counter back to zero, then the queue: a job finished
        // after this read adds to the counter again, and is not missed.
        let _ = self.pool.wake.read();
        while let Ok(token) = self.pool.done.try_recv() {
            let Some(entry) = self.conns.get_mut(token.fd).and_then(Option::as_mut)
            else {
                continue; // its client left while the job ran
            };
            if entry.serial != token.serial {
                continue; // ... and another took its descriptor
            }
            entry.busy = false;
            entry.conn.work_done();
            let next = entry.conn.on_ready(&entry.stream);
            self.drive(token.fd, next);
        }
    }

    /// After `on_ready`: closes the connection, or hands off the work it
    /// waits for, and has epoll watch for what it waits for next.
    fn drive(&mut self, fd: usize, next: Interest) {
        let Some(entry) = self.conns[fd].as_mut() else {
            return;
        };
        if next == Interest::Close {
            return self.close(fd);
        }
        if let (Some(work), false) = (entry.conn.work(), entry.busy) {
            let conn = Token {
                fd,
                serial: entry.serial,
            };
            if self.pool.jobs.send(Job { work, conn }).is_err() {
                return self.close(fd); // no worker left: none ever leaves
            }
            entry.busy = true;
        }
        // While its job runs, a connection waits for nothing but room to
        // write the responses owed before it. (epoll reports a hang-up or
        // an error whatever it is asked for: a client that resets the
        // connection meanwhile is closed.)
        let flags = match next {
            Interest::Write => EpollFlags::EPOLLOUT,
            _ if entry.busy => EpollFlags::empty(),
            _ => EpollFlags::EPOLLIN,
        };
        if flags != entry.flags {
            let mut event = EpollEvent::new(flags, fd as u64);
            if self.epoll.modify(&entry.stream, &mut event).is_err() {
                return self.close(fd);
            }
            entry.flags = flags;
        }
    }

    fn close(&mut self, fd: usize) {
        if self.conns[fd].take().is_some() {
            self.open -= 1;
        }
    }
    // ANCHOR_END: ready

    /// Closes every connection whose deadline has passed, except those
    /// whose job is running: the deadline is the client's, not the pool's.
    fn sweep(&mut self, now: Instant) {
        for slot in &mut self.conns {
            if slot
                .as_ref()
                .is_some_and(|e| !e.busy && e.conn.deadline() <= now)
            {
                *slot = None;
                self.open -= 1;
            }
        }
    }
}
