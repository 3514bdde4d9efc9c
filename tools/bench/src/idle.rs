//! Idle connections: established connections that hold a server's
//! descriptors while asking nothing of it, as the keep-alive connections of
//! a busy site's readers do between two clicks. What they cost a server is
//! what its way of waiting costs per connection: nothing for epoll, a
//! look at each for select and poll, a blocked thread and its stack for a
//! thread per connection.
//!
//! To a server that keeps connections alive, each idle connection sends
//! one request and reads its answer, then sits: it is then a kept-alive
//! connection between two requests, registered with the server's loop,
//! and the server's head deadline (5 s in every listing) runs from that
//! answer. Then every one of them asks once more, all at once, so that
//! all the deadlines start together, just before the measured run, which
//! must end well within them. To a server that closes after one answer
//! they send nothing, and the deadline runs from when the server took the
//! connection; we wait until the server holds them all.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsFd;
use std::time::Duration;

use nix::sys::socket::{setsockopt, sockopt};

use crate::results::SlowReport;

/// What an idle connection asks, twice: HTTP/1.1 keeps the connection.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: idle.example\r\n\r\n";

/// How the book's answer ends.
const BODY: &[u8] = b"Hello world";

/// The most any step may take: a connect, an answer, the server taking
/// the connections.
const PATIENCE: Duration = Duration::from_secs(10);

/// How often to look whether the server keeps up taking connections, and
/// how many may wait for it: half the listings' accept queue.
const PACE: usize = 128;
const QUEUED: usize = 512;

/// Idle connections, open.
pub struct IdleConnections {
    streams: Vec<TcpStream>,
}

impl IdleConnections {
    /// Opens `count` idle connections to `addr`, served by the process
    /// group led by `pid`. `ask`: the server keeps connections alive, and
    /// each connection asks twice (see the module's comment); otherwise
    /// they send nothing. Returns once the server holds them all.
    pub fn open(addr: SocketAddr, count: usize, ask: bool, pid: u32) -> io::Result<Self> {
        let fds_before = testbed::procfs::open_fds(pid).unwrap_or(0);
        let held = || {
            testbed::procfs::open_fds(pid)
                .unwrap_or(0)
                .saturating_sub(fds_before)
        };
        let mut streams = Vec::with_capacity(count);
        for i in 0..count {
            // Never more waiting in the accept queue than half its length:
            // a handshake dropped from a full queue is tried again only a
            // second later, and a silent connection's deadline runs.
            if i % PACE == 0 {
                wait_until(|| held() + QUEUED >= i)?;
            }
            let stream = TcpStream::connect_timeout(&addr, PATIENCE)?;
            stream.set_read_timeout(Some(PATIENCE))?;
            stream.set_write_timeout(Some(PATIENCE))?;
            // Closed with a reset, not into TIME_WAIT: ten thousand
            // connections a run must not use up the client's ports.
            setsockopt(
                &stream.as_fd(),
                sockopt::Linger,
                &nix::libc::linger {
                    l_onoff: 1,
                    l_linger: 0,
                },
            )?;
            streams.push(stream);
        }
        if ask {
            // Once to be registered as kept alive, once more all together.
            for _ in 0..2 {
                for s in &mut streams {
                    s.write_all(REQUEST)?;
                }
                for s in &mut streams {
                    answer(s)?;
                }
            }
        } else {
            // The server has them once it holds a descriptor for each.
            wait_until(|| held() >= count)?;
        }
        Ok(IdleConnections { streams })
    }

    /// Looks at every connection, whether the server closed it meanwhile,
    /// then closes them all.
    pub fn leave(self) -> SlowReport {
        let mut report = SlowReport {
            connected: self.streams.len(),
            ..SlowReport::default()
        };
        let mut buf = [0u8; 512];
        for mut s in self.streams {
            let open = s.set_nonblocking(true).is_ok()
                && matches!(s.read(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
            if !open {
                report.dropped += 1;
            }
        }
        report
    }
}

/// Waits until `done`, for [`PATIENCE`] at most.
fn wait_until(done: impl Fn() -> bool) -> io::Result<()> {
    testbed::wait_for("the server to take the idle connections", PATIENCE, || {
        done().then_some(())
    })
    .map_err(|e| io::Error::new(io::ErrorKind::TimedOut, e))
}

/// Reads one answer of the book's, whole.
fn answer(stream: &mut TcpStream) -> io::Result<()> {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !got.ends_with(BODY) {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed an idle connection before answering",
            ));
        }
        got.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nHello world";

    /// Against a listener that answers each request on a kept connection:
    /// two answers each, then all still open.
    #[test]
    fn idle_connections_ask_twice_and_sit() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let mut held = Vec::new();
            for _ in 0..3 {
                let (mut s, _) = listener.accept().unwrap();
                held.push(thread::spawn(move || {
                    let mut buf = [0u8; 512];
                    let mut heads = 0;
                    while heads < 2 {
                        let n = s.read(&mut buf).unwrap();
                        let new = buf[..n].windows(4).filter(|w| *w == b"\r\n\r\n").count();
                        for _ in 0..new {
                            s.write_all(ANSWER).unwrap();
                        }
                        heads += new;
                    }
                    s
                }));
            }
            held.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>()
        });
        let idle = IdleConnections::open(addr, 3, true, std::process::id()).unwrap();
        let held = server.join().unwrap();
        let report = idle.leave();
        assert_eq!((report.connected, report.dropped), (3, 0));
        drop(held);
    }
}
