//! memcached's and netty's model: one thread accepts every connection and
//! hands each, in turn, to one of N event loops (the `epoll` server's loop),
//! ringing the loop's eventfd so that its `epoll_wait` returns.
//!
//! Run it with `cargo run --release -p epoll-acceptor -- [ADDR [N]]`: it
//! listens on ADDR (default `127.0.0.1:9527`) with N loops (default: one per
//! core), and one more thread that accepts.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

use nix::sys::epoll::EpollFlags;
use nix::sys::eventfd::{EfdFlags, EventFd};

// ANCHOR: main
fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next();
    let loops = wire::workers(args.next())?;
    let listener = wire::listen(addr.as_deref())?;

    // As in `epoll-reuseport`: if a loop ever ended, the server would end,
    // with its error.
    let (ended, end) = mpsc::channel();
    let mut outboxes = Vec::with_capacity(loops);
    for i in 0..loops {
        let (outbox, inbox) = mailbox()?;
        let ended = ended.clone();
        thread::Builder::new()
            .name(format!("loop-{i}"))
            .spawn(move || {
                ended.send(epoll::serve_from(inbox, EpollFlags::EPOLLIN))
            })?;
        outboxes.push(outbox);
    }
    drop(ended);

    let addr = listener.local_addr()?;
    thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || accept(&listener, &outboxes))?;
    println!("listening on http://{addr}");
    end.recv()
        .map_err(|_| io::Error::other("every loop has panicked"))?
}
// ANCHOR_END: main

// ANCHOR: accept
/// The accepting thread: takes each connection as it comes, with a
/// blocking `accept`, and gives it to the next loop in turn.
fn accept(listener: &TcpListener, loops: &[Outbox]) {
    for outbox in loops.iter().cycle() {
        outbox.give(wire::accept(listener));
    }
}
// ANCHOR_END: accept

// ANCHOR: door
/// The accepting thread's end of the way to one loop: a channel for the
/// connections, and the loop's eventfd, rung after each.
struct Outbox {
    to: Sender<TcpStream>,
    ring: Arc<EventFd>,
}

/// The loop's end, its door: what the loop's epoll watches (the eventfd,
/// readable while its count is above zero) and where the connections wait.
struct Inbox {
    from: Receiver<TcpStream>,
    ring: Arc<EventFd>,
}

/// A new way to a loop, both ends.
fn mailbox() -> io::Result<(Outbox, Inbox)> {
    let flags = EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC;
    let ring = Arc::new(EventFd::from_value_and_flags(0, flags)?);
    let (to, from) = mpsc::channel();
    let inbox = Inbox {
        from,
        ring: Arc::clone(&ring),
    };
    Ok((Outbox { to, ring }, inbox))
}

impl Outbox {
    /// Hands `stream` to the loop, then wakes it: in that order, so that
    /// a loop woken always finds the connection it was woken for.
    fn give(&self, stream: TcpStream) {
        // The loop never blocks: neither may its sockets. A socket that
        // cannot be made non-blocking is closed (dropped) unanswered.
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        if self.to.send(stream).is_ok() {
            // Adds 1 to the count; it cannot fail short of 2^64 - 2 rings
            // that the loop has not read.
            let _ = self.ring.write(1);
        }
    }
}

impl epoll::Door for Inbox {
    fn fd(&self) -> BorrowedFd<'_> {
        self.ring.as_fd()
    }

    fn next(&mut self) -> Option<TcpStream> {
        if let Ok(stream) = self.from.try_recv() {
            return Some(stream);
        }
        // None left: set the count back to zero, then look once more. A
        // connection handed over between the first look and the reset
        // rang before it, and is found now; one handed over after the
        // reset rings again, and the loop is woken for it.
        let _ = self.ring.read();
        self.from.try_recv().ok()
    }
}
// ANCHOR_END: door
