//! The edge-triggered epoll server: the `epoll` server's loop, with every
//! socket registered once, for everything, and reported only when its
//! state changes.
//!
//! Run it with `cargo run --release -p epoll-edge -- [ADDR]`: it listens on ADDR
//! (default `127.0.0.1:9527`).

use std::io;
use std::mem;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use conn::{ACCEPT_BATCH, Acceptor, Conn, Interest};
use nix::errno::Errno;
use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};

/// The token of the listening socket; a connection's is its descriptor.
const LISTENER: u64 = u64::MAX;

/// The most events one `epoll_wait` returns; any more wait for the next.
const EVENTS: usize = 1024;

/// How often the loop closes the connections whose deadline has passed.
const SWEEP: Duration = Duration::from_millis(250);

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = wire::listen(addr.as_deref())?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener)
}

// ANCHOR: state
/// One open connection. `interest` is what it last said it waits for;
/// epoll is not told (it watches for everything), but the loop uses it to
/// skip events that cannot help.
struct Entry {
    stream: TcpStream,
    conn: Conn,
    interest: Interest,
    /// epoll said the client has shut down its sending side
    /// (`EPOLLRDHUP`): its stream ends after the bytes already there.
    hung_up: bool,
}

struct Loop {
    epoll: Epoll,
    acceptor: Acceptor,
    /// The open connections, each at the index of its file descriptor.
    conns: Vec<Option<Entry>>,
    open: usize,
    /// Connections that stopped with bytes perhaps still unread, to let
    /// others have a turn: no new edge will announce those bytes, so the
    /// loop must come back to them by itself.
    again: Vec<usize>,
    /// The same for the listening socket: `accept` stopped after a batch,
    /// with connections perhaps still queued.
    accept_again: bool,
}
// ANCHOR_END: state

// ANCHOR: register
/// What every connection is registered for, once: readable, writable,
/// the client's end of sending (`EPOLLRDHUP`), edge-triggered. Hang-ups and
/// errors are always reported.
fn edge() -> EpollFlags {
    EpollFlags::EPOLLIN
        | EpollFlags::EPOLLOUT
        | EpollFlags::EPOLLRDHUP
        | EpollFlags::EPOLLET
}
// ANCHOR_END: register

// ANCHOR: serve
fn serve(listener: TcpListener) -> io::Result<()> {
    let mut l = Loop {
        epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
        acceptor: Acceptor::new(listener)?,
        conns: Vec::new(),
        open: 0,
        again: Vec::new(),
        accept_again: false,
    };
    let edge_in = EpollFlags::EPOLLIN | EpollFlags::EPOLLET;
    let listening = EpollEvent::new(edge_in, LISTENER);
    l.epoll.add(l.acceptor.listener(), listening)?;

    let mut events = vec![EpollEvent::empty(); EVENTS];
    let mut next_sweep = Instant::now() + SWEEP;
    loop {
        let timeout = if !l.again.is_empty() || l.accept_again {
            EpollTimeout::ZERO // work is waiting: only look for more
        } else if l.open == 0 && !l.acceptor.held_back() {
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
                fd => l.ready(fd as usize, event.events()),
            }
        }
        // One more turn for each connection that was cut short, and for
        // the queue of connections if it was.
        for fd in mem::take(&mut l.again) {
            l.ready(fd, EpollFlags::EPOLLIN);
        }
        if l.accept_again {
            l.accept();
        }
        let now = Instant::now();
        if now >= next_sweep {
            l.sweep(now);
            // A shortage made `accept` stop early: the connections left
            // in the queue will bring no new edge, so look for them here.
            if l.acceptor.held_back() {
                l.accept();
            }
            next_sweep = now + SWEEP;
        }
    }
}
// ANCHOR_END: serve

impl Loop {
    // ANCHOR: accept
    /// Takes the connections waiting. Edge-triggered, the event came when
    /// the queue stopped being empty, and no other will come for the
    /// connections already in it: the loop must go on until `accept` says
    /// there is none left. It does, a batch per turn (`accept_again`).
    fn accept(&mut self) {
        let now = Instant::now();
        self.accept_again = true;
        for _ in 0..ACCEPT_BATCH {
            let Some(stream) = self.acceptor.accept() else {
                self.accept_again = false;
                return;
            };
            let mut conn = Conn::new(now);
            let interest = conn.on_ready(&stream);
            if interest == Interest::Close {
                continue;
            }
            let fd = stream.as_raw_fd();
            let event = EpollEvent::new(edge(), fd as u64);
            if self.epoll.add(&stream, event).is_err() {
                continue;
            }
            let cut_short = conn.cut_short();
            let slot = fd as usize;
            if slot >= self.conns.len() {
                self.conns.resize_with(slot + 1, || None);
            }
            self.conns[slot] = Some(Entry {
                stream,
                conn,
                interest,
                hung_up: false,
            });
            self.open += 1;
            if cut_short {
                self.again.push(slot);
            }
        }
    }
    // ANCHOR_END: accept

    // ANCHOR: ready
    fn ready(&mut self, fd: usize, events: EpollFlags) {
        let Some(entry) = self.conns.get_mut(fd).and_then(Option::as_mut) else {
            return;
        };
        entry.hung_up |= events.contains(EpollFlags::EPOLLRDHUP);
        // Registered for both directions, a socket is reported when either
        // changes: just after registration, say, as writable. A connection
        // waiting to read has nothing to do with room to write, and the
        // other way round.
        let wanted = match entry.interest {
            Interest::Write => EpollFlags::EPOLLOUT,
            _ => EpollFlags::EPOLLIN,
        };
        let end = EpollFlags::EPOLLHUP | EpollFlags::EPOLLERR;
        if !events.intersects(wanted | end) {
            return;
        }
        let mut next = entry.conn.on_ready(&entry.stream);
        // The client's FIN may have come with its last bytes, in this same
        // edge. Then `on_ready` stopped at the short read that emptied the
        // socket, one read before the end of the stream, and no new edge
        // will come for it: read once more, to find it.
        if entry.hung_up && next == Interest::Read && !entry.conn.cut_short() {
            next = entry.conn.on_ready(&entry.stream);
        }
        if next == Interest::Close || events.intersects(end) {
            self.close(fd);
            return;
        }
        // No epoll_ctl, ever: the registration stands for both directions.
        entry.interest = next;
        if entry.conn.cut_short() {
            self.again.push(fd);
        }
    }
    // ANCHOR_END: ready

    fn close(&mut self, fd: usize) {
        if self.conns[fd].take().is_some() {
            self.open -= 1;
        }
    }

    fn sweep(&mut self, now: Instant) {
        for slot in &mut self.conns {
            if slot.as_ref().is_some_and(|e| e.conn.deadline() <= now) {
                *slot = None;
                self.open -= 1;
            }
        }
    }
}
