//! The select server: the poll server's loop on the oldest readiness
//! interface. The interest list is two bitmaps, one bit per possible
//! descriptor, which caps the descriptors it can watch at `FD_SETSIZE`.
//!
//! Run it with `cargo run --release -p select -- [ADDR]`: it listens on ADDR
//! (default `127.0.0.1:9527`).

use std::io;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;

use conn::{ACCEPT_BATCH, Acceptor, Conn, Interest};
use nix::errno::Errno;
use nix::sys::select::{FD_SETSIZE, FdSet, select};
use nix::sys::time::TimeVal;

/// One open connection: its socket, its state, and what it waits for.
struct Entry {
    stream: TcpStream,
    conn: Conn,
    interest: Interest,
}

// ANCHOR: fits
/// Whether select can watch this socket. An `fd_set` is a bitmap of
/// `FD_SETSIZE` (1024) bits; the C macros write past its end for a larger
/// descriptor, and nix's `FdSet` panics instead.
fn fits(fd: RawFd) -> bool {
    usize::try_from(fd).is_ok_and(|fd| fd < FD_SETSIZE)
}
// ANCHOR_END: fits

// ANCHOR: main
fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = wire::listen(addr.as_deref())?;
    if !fits(listener.as_raw_fd()) {
        return Err(io::Error::other(
            "the listening socket is beyond FD_SETSIZE",
        ));
    }
    println!("listening on http://{}", listener.local_addr()?);

    let mut acceptor = Acceptor::new(listener)?;
    let mut conns: Vec<Entry> = Vec::new();
    let mut ready: Vec<bool> = Vec::new();
    loop {
        // ANCHOR: sets
        // 1. Two bitmaps, rebuilt every time: select overwrites them with
        // its answer.
        let mut reads = FdSet::new();
        let mut writes = FdSet::new();
        let listening = acceptor.listener().as_fd();
        reads.insert(listening);
        let mut highest = listening.as_raw_fd();
        let mut nearest: Option<Instant> = None;
        for e in &conns {
            let fd = e.stream.as_fd();
            match e.interest {
                Interest::Read => reads.insert(fd),
                Interest::Write => writes.insert(fd),
                Interest::Close => {}
            }
            highest = highest.max(fd.as_raw_fd());
            let deadline = e.conn.deadline();
            nearest = Some(nearest.map_or(deadline, |n| n.min(deadline)));
        }
        // 2. The kernel looks at every bit below `highest + 1`.
        let mut timeout = nearest.map(until);
        match select(highest + 1, &mut reads, &mut writes, None, timeout.as_mut()) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        // 3. Which bits are still set.
        let listener_ready = reads.contains(listening);
        ready.clear();
        ready.extend(conns.iter().map(|e| {
            let fd = e.stream.as_fd();
            reads.contains(fd) || writes.contains(fd)
        }));
        // ANCHOR_END: sets
        // (The sets borrow the sockets: from here on they are not used.)

        // 4. Serve the ready, close the finished and the expired.
        let now = Instant::now();
        for i in (0..conns.len()).rev() {
            let e = &mut conns[i];
            if ready[i] {
                // A socket in error or hung up is reported readable (and
                // writable): `on_ready` meets the error and says Close.
                e.interest = e.conn.on_ready(&e.stream);
            }
            if e.interest == Interest::Close || e.conn.deadline() <= now {
                conns.swap_remove(i);
            }
        }
        // ANCHOR: accept
        // 5. New connections; one that select could not watch is closed
        // unanswered.
        if listener_ready {
            for _ in 0..ACCEPT_BATCH {
                let Some(stream) = acceptor.accept() else {
                    break;
                };
                if !fits(stream.as_raw_fd()) {
                    continue;
                }
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
        // ANCHOR_END: accept
    }
}
// ANCHOR_END: main

/// The time from now to `deadline`, to the microsecond.
fn until(deadline: Instant) -> TimeVal {
    let left = deadline.saturating_duration_since(Instant::now());
    TimeVal::new(left.as_secs() as _, left.subsec_micros() as _)
}
