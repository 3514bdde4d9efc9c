//! NOT A SERVER TO USE. The floor: the least a one-threaded readiness loop
//! can do for a keep-alive request, so that every other model's CPU per
//! request can be read against it. One `epoll_wait` for whatever is ready,
//! one `read` and one `write` per request, and nothing else: no parsing
//! beyond finding the blank line that ends a head, no deadlines, no bodies,
//! no `Connection: close`, no limit but the buffer's. A client that
//! misbehaves can hold a connection forever, or be answered wrongly.
//!
//! Run it with `cargo run --release -p floor -- [ADDR]`.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

use nix::sys::epoll::{
    Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout,
};

// ANCHOR: floor
/// The listening socket's token; a connection's is its descriptor.
const LISTENER: u64 = u64::MAX;

/// One connection: its socket and the start of a head not complete yet.
struct Conn {
    stream: TcpStream,
    buf: [u8; 1024],
    filled: usize,
}

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let listener = wire::listen(addr.as_deref())?;
    listener.set_nonblocking(true)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    epoll.add(&listener, EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))?;
    println!("listening on http://{}", listener.local_addr()?);
    let mut conns: HashMap<u64, Conn> = HashMap::new();
    let mut events = [EpollEvent::empty(); 1024];
    loop {
        let n = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        for event in &events[..n] {
            let token = event.data();
            if token == LISTENER {
                accept(&listener, &epoll, &mut conns)?;
            } else if let Some(conn) = conns.get_mut(&token) {
                if !conn.ready() {
                    // Dropping the stream closes it, which leaves epoll too.
                    conns.remove(&token);
                }
            }
        }
    }
}

/// Takes every connection queued, and watches each for reading.
fn accept(
    listener: &TcpListener,
    epoll: &Epoll,
    conns: &mut HashMap<u64, Conn>,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(true)?;
                let token = stream.as_raw_fd() as u64;
                epoll.add(&stream, EpollEvent::new(EpollFlags::EPOLLIN, token))?;
                let buf = [0; 1024];
                conns.insert(
                    token,
                    Conn {
                        stream,
                        buf,
                        filled: 0,
                    },
                );
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            // Out of descriptors, say: wait, rather than spin.
            Err(_) => {
                thread::sleep(Duration::from_millis(10));
                return Ok(());
            }
        }
    }
}

impl Conn {
    /// One read, and one write of a response for every head it completed.
    /// False: close the connection.
    fn ready(&mut self) -> bool {
        let Ok(n) = self.stream.read(&mut self.buf[self.filled..]) else {
            return false;
        };
        if n == 0 {
            return false;
        }
        self.filled += n;
        let mut heads = 0;
        let mut start = 0;
        while let Some(end) = find_end(&self.buf[start..self.filled]) {
            heads += 1;
            start += end;
        }
        self.buf.copy_within(start..self.filled, 0);
        self.filled -= start;
        if heads == 0 {
            // No room left, and still no end of a head: give up.
            return self.filled < self.buf.len();
        }
        let out = wire::RESPONSE_KEEP_ALIVE.repeat(heads);
        // A short write is not finished later: the client is dropped.
        matches!(self.stream.write(&out), Ok(n) if n == out.len())
    }
}

/// Where the first head in `buf` ends (after its blank line), if it does.
fn find_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}
// ANCHOR_END: floor
