//! An event loop on epoll, level-triggered. One thread asks the kernel
//! which of its sockets are ready, does with each what it allows without
//! blocking, and asks again. The `epoll` server runs one such loop; the
//! `epoll-reuseport` server runs one per core, `epoll-prefork` one per
//! process, and `epoll-acceptor` N loops fed by an accepting thread.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use conn::{ACCEPT_BATCH, Acceptor, Conn, Interest};
use nix::errno::Errno;
use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};

// ANCHOR: constants
/// The token epoll hands back with the listening socket's events. A
/// connection's token is its file descriptor, which is never this.
const LISTENER: u64 = u64::MAX;

/// The most events one `epoll_wait` returns; any more wait for the next.
const EVENTS: usize = 1024;

/// How often the loop closes the connections whose deadline has passed.
const SWEEP: Duration = Duration::from_millis(250);
// ANCHOR_END: constants

// ANCHOR: state
/// One open connection: its socket, its state, and what epoll watches it
/// for.
struct Entry {
    stream: TcpStream,
    conn: Conn,
    interest: Interest,
}

/// Everything one loop owns.
struct Loop<D> {
    epoll: Epoll,
    /// Where new connections come from.
    door: D,
    /// The open connections, each at the index of its file descriptor.
    /// The kernel gives a new socket the lowest free number, so the table
    /// is about as long as the most connections open at once.
    conns: Vec<Option<Entry>>,
    open: usize,
}
// ANCHOR_END: state

// ANCHOR: serve
/// Serves every connection to `listener`, in this thread, until epoll
/// itself fails.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    serve_from(Acceptor::new(listener)?, EpollFlags::EPOLLIN)
}

/// Serves every connection that comes through `door`, which epoll watches
/// with `flags`, until epoll itself fails.
pub fn serve_from<D: Door>(door: D, flags: EpollFlags) -> io::Result<()> {
    let mut l = Loop {
        epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
        door,
        conns: Vec::new(),
        open: 0,
    };
    l.epoll.add(l.door.fd(), EpollEvent::new(flags, LISTENER))?;

    let mut events = vec![EpollEvent::empty(); EVENTS];
    let mut next_sweep = Instant::now() + SWEEP;
    loop {
        // With no connection open, nothing can expire: sleep until a
        // client comes.
        let timeout = if l.open == 0 {
            EpollTimeout::NONE
        } else {
            conn::epoll_timeout(next_sweep)
        };
        let n = match l.epoll.wait(&mut events, timeout) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0, // a signal came: wait again
            Err(e) => return Err(e.into()),
        };
        for event in &events[..n] {
            match event.data() {
                LISTENER => l.accept(),
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

// ANCHOR: door
/// Where a loop's new connections come from: a listening socket it accepts
/// on itself (an [`Acceptor`]), or another thread that hands them over.
pub trait Door {
    /// What epoll watches: readable while a connection may be waiting.
    fn fd(&self) -> BorrowedFd<'_>;
    /// The next new connection, non-blocking, or `None` when there is none
    /// to take now.
    fn next(&mut self) -> Option<TcpStream>;
}

impl Door for Acceptor {
    fn fd(&self) -> BorrowedFd<'_> {
        self.listener().as_fd()
    }

    fn next(&mut self) -> Option<TcpStream> {
        self.accept()
    }
}
// ANCHOR_END: door

impl<D: Door> Loop<D> {
    // ANCHOR: accept
    /// Takes the connections waiting to be accepted, a batch at most: if
    /// more wait, the listening socket is still readable, and the next
    /// `epoll_wait` says so, after the other connections' events.
    fn accept(&mut self) {
        let now = Instant::now();
        for _ in 0..ACCEPT_BATCH {
            let Some(stream) = self.door.next() else {
                return;
            };
            let mut conn = Conn::new(now);
            // The request often arrives with the connection: try it now,
            // and a connection answered at once is never registered at all.
            let interest = conn.on_ready(&stream);
            if interest == Interest::Close {
                continue; // dropping `stream` closes it
            }
            let fd = stream.as_raw_fd();
            let event = EpollEvent::new(flags(interest), fd as u64);
            if self.epoll.add(&stream, event).is_err() {
                continue; // no kernel memory to watch it: this client loses
            }
            let slot = fd as usize;
            if slot >= self.conns.len() {
                self.conns.resize_with(slot + 1, || None);
            }
            self.conns[slot] = Some(Entry {
                stream,
                conn,
                interest,
            });
            self.open += 1;
        }
    }
    // ANCHOR_END: accept

    // ANCHOR: ready
    /// Lets a connection whose socket is ready do what it can.
    fn ready(&mut self, fd: usize, events: EpollFlags) {
        // Always there: no event closes any connection but its own, and
        // epoll reports a socket at most once per batch. Should that ever
        // change, a stale event is skipped here instead of panicking.
        let Some(entry) = self.conns.get_mut(fd).and_then(Option::as_mut) else {
            return;
        };
        let mut next = entry.conn.on_ready(&entry.stream);
        if events.intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR) {
            // The socket is dead or in error; `on_ready` has met that as a
            // failed read or write, and said Close. Make sure: epoll reports
            // these whatever we ask for, so a connection kept open now
            // would be reported again at once, forever.
            next = Interest::Close;
        }
        if next == Interest::Close {
            self.close(fd);
        } else if next != entry.interest {
            // Only when it changed: every epoll_ctl is a system call.
            let mut event = EpollEvent::new(flags(next), fd as u64);
            if self.epoll.modify(&entry.stream, &mut event).is_err() {
                return self.close(fd);
            }
            entry.interest = next;
        }
    }

    /// Forgets a connection and closes its socket. Closing the last
    /// descriptor of a socket also takes it out of every epoll interest
    /// list, so an explicit `EPOLL_CTL_DEL` would be a system call spent
    /// for nothing.
    fn close(&mut self, fd: usize) {
        if self.conns[fd].take().is_some() {
            self.open -= 1;
        }
    }
    // ANCHOR_END: ready

    // ANCHOR: sweep
    /// Closes every connection whose deadline has passed: a client silent
    /// for too long, in the middle of a head or between two requests.
    fn sweep(&mut self, now: Instant) {
        for slot in &mut self.conns {
            if slot.as_ref().is_some_and(|e| e.conn.deadline() <= now) {
                *slot = None;
                self.open -= 1;
            }
        }
    }
    // ANCHOR_END: sweep
}

/// What epoll watches a socket for, for each thing a connection can want.
fn flags(interest: Interest) -> EpollFlags {
    match interest {
        Interest::Read => EpollFlags::EPOLLIN,
        Interest::Write => EpollFlags::EPOLLOUT,
        Interest::Close => EpollFlags::empty(),
    }
}
