//! The poll server: one thread, one loop, every connection. Each turn of
//! the loop hands the kernel the whole list of sockets and what to watch
//! each for, and gets back which are ready.
//!
//! Run it with `cargo run --release -p poll -- [ADDR]`: it listens on ADDR
//! (default `127.0.0.1:9527`).

use std::io;
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::time::Instant;

use conn::{ACCEPT_BATCH, Acceptor, Conn, Interest};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

// ANCHOR: entry
/// One open connection: its socket, its state, and what it waits for.
struct Entry {
    stream: TcpStream,
    conn: Conn,
    interest: Interest,
}
// ANCHOR_END: entry

// ANCHOR: main
fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = wire::listen(addr.as_deref())?;
    println!("listening on http://{}", listener.local_addr()?);

    let mut acceptor = Acceptor::new(listener)?;
    let mut conns: Vec<Entry> = Vec::new();
    // What poll said about each connection, by index in `conns`.
    let mut ready: Vec<PollFlags> = Vec::new();
    loop {
        // 1. The whole list, every time: the listener, then each connection.
        let mut fds = Vec::with_capacity(1 + conns.len());
        fds.push(PollFd::new(acceptor.listener().as_fd(), PollFlags::POLLIN));
        let mut nearest: Option<Instant> = None;
        for e in &conns {
            fds.push(PollFd::new(e.stream.as_fd(), flags(e.interest)));
            let deadline = e.conn.deadline();
            nearest = Some(nearest.map_or(deadline, |n| n.min(deadline)));
        }
        // 2. Wait until one is ready, or until the nearest deadline.
        match poll(&mut fds, until(nearest)) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        // 3. Read the answer: the kernel wrote it into the same list.
        let listener_ready = fds[0].any().unwrap_or(false);
        ready.clear();
        // (`revents` is `None` only for bits nix does not know, which Linux
        // does not set unasked; `on_ready` would find out what they meant.)
        ready.extend(
            fds[1..]
                .iter()
                .map(|fd| fd.revents().unwrap_or(PollFlags::POLLIN)),
        );
        drop(fds); // it borrows the sockets: done with it before we close any

        // 4. Serve the ready connections and close the expired ones, from
        // the end, so that `swap_remove` only moves one already seen.
        let now = Instant::now();
        // Hung up, in error, not open: closed, whatever `on_ready` says.
        let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
        for i in (0..conns.len()).rev() {
            let e = &mut conns[i];
            let events = ready[i];
            let mut next = e.interest;
            if !events.is_empty() {
                next = e.conn.on_ready(&e.stream);
                if events.intersects(gone) {
                    next = Interest::Close;
                }
            }
            if next == Interest::Close || e.conn.deadline() <= now {
                conns.swap_remove(i); // dropping the stream closes it
            } else {
                e.interest = next;
            }
        }
        // 5. New connections, each read at once.
        if listener_ready {
            for _ in 0..ACCEPT_BATCH {
                let Some(stream) = acceptor.accept() else {
                    break;
                };
                let mut conn = Conn::new(now);
                let interest = conn.on_ready(&stream);
                if interest != Interest::Close {
                    conns.push(Entry {
                        stream,
                        conn,
                        interest,
                    });
                }
            }
        }
    }
}
// ANCHOR_END: main

fn flags(interest: Interest) -> PollFlags {
    match interest {
        Interest::Read => PollFlags::POLLIN,
        Interest::Write => PollFlags::POLLOUT,
        Interest::Close => PollFlags::empty(),
    }
}

/// The time from now to `deadline`, in milliseconds rounded up (rounded
/// down, the loop would spin through the last millisecond); no deadline,
/// no timeout.
fn until(deadline: Option<Instant>) -> PollTimeout {
    let Some(deadline) = deadline else {
        return PollTimeout::NONE;
    };
    let ms = deadline
        .saturating_duration_since(Instant::now())
        .as_micros()
        .div_ceil(1000);
    PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
}
