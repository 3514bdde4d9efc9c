//! One connection of an event-driven server: what it has read, what it
//! still owes the client, and what it waits for next. The event loops of
//! the readiness chapters (select, poll, epoll) differ only in how they
//! learn that a socket is ready; each hands the socket to
//! [`Conn::on_ready`], which does as much as the socket allows without
//! blocking and says what to wait for next.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use wire::{
    BAD_REQUEST, HEAD_LIMIT, HEAD_TIMEOUT, Head, RESPONSE, RESPONSE_KEEP_ALIVE, TOO_LARGE,
    parse_head,
};

// ANCHOR: interest
/// What a connection waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// The rest of a request head, or the next request.
    Read,
    /// Room in the socket's send buffer for the rest of a response.
    Write,
    /// Nothing: close the socket and forget the connection.
    Close,
}
// ANCHOR_END: interest

/// How long a connection that is closing may keep sending bytes we throw
/// away, and how many: see [`Conn::on_ready`].
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

// ANCHOR: conn
/// The state of one connection between two readiness events.
pub struct Conn {
    /// Bytes received and not yet answered: part of a head, or several
    /// pipelined heads.
    buf: Box<[u8; HEAD_LIMIT]>,
    filled: usize,
    /// Responses owed, and how much of them the socket has taken.
    out: Vec<u8>,
    written: usize,
    /// Close once `out` is written: the client asked to, or sent a bad head.
    closing: bool,
    /// We said we are done (FIN) and are discarding what the client still
    /// sends until it closes too: see `linger`.
    lingering: bool,
    /// The last read came back short: the socket had nothing more, and
    /// another read now would only return `WouldBlock`.
    drained: bool,
    /// When the connection is given up: [`HEAD_TIMEOUT`] after it was
    /// accepted or last had a response written, [`LINGER`] once it lingers.
    deadline: Instant,
}
// ANCHOR_END: conn

impl Conn {
    /// A connection just accepted. Its socket must be non-blocking.
    pub fn new(now: Instant) -> Conn {
        Conn {
            buf: Box::new([0; HEAD_LIMIT]),
            filled: 0,
            out: Vec::new(),
            written: 0,
            closing: false,
            lingering: false,
            drained: false,
            deadline: now + HEAD_TIMEOUT,
        }
    }

    /// When the event loop must close this connection if it is still open.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    // ANCHOR: on_ready
    /// Does all the work the socket allows now: read what has arrived,
    /// answer every complete head in order, write until the socket takes no
    /// more. Returns what to wait for next. Errors (a reset, say) concern
    /// this client only and come back as [`Interest::Close`].
    ///
    /// It reads until a read comes back short, which means the socket had
    /// no more (epoll(7) says so for stream sockets), so it is correct for
    /// edge-triggered notification as well as level-triggered.
    pub fn on_ready(&mut self, stream: &TcpStream) -> Interest {
        self.drive(stream).unwrap_or(Interest::Close)
    }

    fn drive(&mut self, mut stream: &TcpStream) -> io::Result<Interest> {
        if self.lingering {
            return self.linger(stream);
        }
        self.drained = false;
        loop {
            self.answer();
            // Write what we owe. While the client is not taking it, read
            // nothing more from it: what a client can make us buffer stays
            // bounded.
            while self.written < self.out.len() {
                match stream.write(&self.out[self.written..]) {
                    Ok(0) => return Ok(Interest::Close),
                    Ok(n) => self.written += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Interest::Write),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if !self.out.is_empty() {
                // Everything owed is written: the clock starts again.
                self.out.clear();
                self.written = 0;
                self.deadline = Instant::now() + HEAD_TIMEOUT;
            }
            if self.closing {
                return self.close(stream);
            }
            if self.drained {
                return Ok(Interest::Read);
            }
            // Never empty here: a full buffer holds a complete head or is
            // too large, and `answer` has dealt with either.
            let space = &mut self.buf[self.filled..];
            debug_assert!(!space.is_empty());
            match stream.read(space) {
                // The client closed its side. What it sent is answered
                // (above) before this; a head it left unfinished never is.
                Ok(0) => return Ok(Interest::Close),
                Ok(n) => {
                    self.drained = n < space.len();
                    self.filled += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Interest::Read),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    // ANCHOR_END: on_ready

    // ANCHOR: answer
    /// Turns every complete head in `buf` into a response in `out`, in the
    /// order they came. Stops at a partial head, and at the first head that
    /// ends the connection.
    fn answer(&mut self) {
        let mut used = 0;
        while !self.closing {
            let response = match parse_head(&self.buf[used..self.filled]) {
                Head::Partial => break,
                Head::Complete { len, keep_alive } => {
                    used += len;
                    self.closing = !keep_alive;
                    if keep_alive {
                        RESPONSE_KEEP_ALIVE
                    } else {
                        RESPONSE
                    }
                }
                refused @ (Head::TooLarge | Head::Bad) => {
                    // Nothing more is answered. What stays in the buffer
                    // tells `close` that the client had more to say.
                    self.closing = true;
                    if refused == Head::TooLarge {
                        TOO_LARGE
                    } else {
                        BAD_REQUEST
                    }
                }
            };
            self.out.extend_from_slice(response);
        }
        // Keep the unanswered rest at the front of the buffer.
        self.buf.copy_within(used..self.filled, 0);
        self.filled -= used;
    }
    // ANCHOR_END: answer

    // ANCHOR: close
    /// The last response is written. A connection with nothing more to read
    /// is closed at once. One whose client sent more (a head we refused,
    /// requests after a `close`) must not be closed with those bytes
    /// unread: the kernel would answer them with a reset, which can destroy
    /// the response on its way. So we send our FIN and read and discard
    /// until the client closes too, for [`LINGER`] and [`LINGER_BYTES`] at
    /// most.
    fn close(&mut self, stream: &TcpStream) -> io::Result<Interest> {
        if self.filled == 0 && self.drained {
            return Ok(Interest::Close);
        }
        stream.shutdown(Shutdown::Write)?;
        self.lingering = true;
        self.filled = 0;
        self.deadline = self.deadline.min(Instant::now() + LINGER);
        self.linger(stream)
    }

    fn linger(&mut self, mut stream: &TcpStream) -> io::Result<Interest> {
        let mut sink = [0u8; 4096];
        loop {
            match stream.read(&mut sink) {
                Ok(0) => return Ok(Interest::Close),
                Ok(n) => {
                    self.filled += n;
                    if self.filled > LINGER_BYTES {
                        return Ok(Interest::Close);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Interest::Read),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    // ANCHOR_END: close
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::thread;

    /// A client socket and the server's non-blocking end of it.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (client, server)
    }

    /// Calls `on_ready` until it asks for something other than `Read` with
    /// nothing to read, like an event loop would (give bytes time to land).
    fn settle(conn: &mut Conn, server: &TcpStream) -> Interest {
        thread::sleep(Duration::from_millis(20));
        conn.on_ready(server)
    }

    fn read_all(client: &mut TcpStream) -> Vec<u8> {
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        got
    }

    #[test]
    fn one_close_request() {
        let (mut client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        assert_eq!(conn.on_ready(&server), Interest::Read);
        client
            .write_all(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(settle(&mut conn, &server), Interest::Close);
        drop(server);
        assert_eq!(read_all(&mut client), RESPONSE);
    }

    #[test]
    fn keep_alive_pipelined_and_split() {
        let (mut client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        client
            .write_all(
                b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HT",
            )
            .unwrap();
        assert_eq!(settle(&mut conn, &server), Interest::Read);
        client
            .write_all(b"TP/1.1\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(settle(&mut conn, &server), Interest::Close);
        drop(server);
        let want = [RESPONSE_KEEP_ALIVE, RESPONSE_KEEP_ALIVE, RESPONSE].concat();
        assert_eq!(read_all(&mut client), want);
    }

    #[test]
    fn bad_head_lingers_then_closes() {
        let (mut client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        client
            .write_all(b"\x16\x03\x01 not http\r\n\r\nmore bytes after")
            .unwrap();
        // The response is written, the FIN sent, and the rest discarded
        // until the client closes.
        assert_eq!(settle(&mut conn, &server), Interest::Read);
        let mut got = vec![0; BAD_REQUEST.len()];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, BAD_REQUEST);
        assert_eq!(read_all(&mut client), b"", "FIN after the response");
        client.write_all(b"still talking").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(settle(&mut conn, &server), Interest::Close);
        assert!(conn.deadline() <= Instant::now() + LINGER);
    }

    #[test]
    fn oversized_head() {
        let (mut client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        let mut head = b"GET / HTTP/1.1\r\nX: ".to_vec();
        head.resize(HEAD_LIMIT + 100, b'a');
        client.write_all(&head).unwrap();
        // The 431 is sent once the buffer is full; the rest is discarded.
        for _ in 0..10 {
            if settle(&mut conn, &server) == Interest::Close || conn.lingering {
                break;
            }
        }
        assert!(conn.lingering);
        client.shutdown(Shutdown::Write).unwrap();
        let got = read_all(&mut client);
        assert_eq!(got, TOO_LARGE);
    }

    #[test]
    fn more_pipelined_requests_than_the_buffer_holds() {
        let (mut client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        // 18 KiB of heads, through an 8 KiB buffer: heads cut at the end of
        // one read are finished by the next.
        let request = b"GET / HTTP/1.1\r\n\r\n".repeat(1000);
        client.write_all(&request).unwrap();
        client.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut rounds = 0;
        while settle(&mut conn, &server) != Interest::Close {
            rounds += 1;
            assert!(rounds < 100, "never finished");
        }
        drop(server);
        let got = read_all(&mut client);
        let mut want = RESPONSE_KEEP_ALIVE.repeat(1000);
        want.extend_from_slice(RESPONSE);
        assert!(got == want, "{} bytes, want {}", got.len(), want.len());
    }

    #[test]
    fn client_that_leaves_mid_head() {
        let (mut client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        client.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
        assert_eq!(settle(&mut conn, &server), Interest::Read);
        drop(client);
        assert_eq!(settle(&mut conn, &server), Interest::Close);
    }
}
