//! One connection of an event-driven server: what it has read, what it
//! still owes the client, and what it waits for next. The event loops of
//! the readiness chapters (select, poll, epoll) differ only in how they
//! learn that a socket is ready; each hands the socket to
//! [`Conn::on_ready`], which does as much as the socket allows without
//! blocking and says what to wait for next. They take connections the same
//! way too, from an [`Acceptor`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::SockFlag;
use socket2::SockRef;

use wire::{HEAD_LIMIT, HEAD_TIMEOUT};

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

/// The most one call to [`Conn::on_ready`] reads before it lets the other
/// connections have a turn: see [`Conn::cut_short`].
const TURN_BYTES: usize = 64 * 1024;

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
    /// The last `on_ready` stopped with bytes perhaps still unread, after
    /// [`TURN_BYTES`], so that one busy client cannot starve the others.
    cut_short: bool,
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
            cut_short: false,
            deadline: now + HEAD_TIMEOUT,
        }
    }

    /// When the event loop must close this connection if it is still open.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    // ANCHOR: cut_short
    /// Whether the last [`Conn::on_ready`] returned [`Interest::Read`]
    /// before the socket was drained, to give other connections a turn
    /// (a client sending a long stream of pipelined requests could
    /// otherwise keep the loop to itself). A level-triggered loop need not
    /// care: the socket is still readable, so the kernel reports it again.
    /// An edge-triggered loop must call `on_ready` again without waiting
    /// for an event, because no new edge will come for bytes already there.
    pub fn cut_short(&self) -> bool {
        self.cut_short
    }
    // ANCHOR_END: cut_short

    // ANCHOR: on_ready
    /// Does all the work the socket allows now: read what has arrived,
    /// answer every complete head in order, write until the socket takes no
    /// more. Returns what to wait for next. Errors (a reset, say) concern
    /// this client only and come back as [`Interest::Close`].
    ///
    /// It reads until a read comes back short, which means the socket had
    /// no more (epoll(7) says so for stream sockets), so it is correct for
    /// edge-triggered notification as well as level-triggered; or until it
    /// has read its turn's worth, which [`Conn::cut_short`] then says.
    pub fn on_ready(&mut self, stream: &TcpStream) -> Interest {
        self.drive(stream).unwrap_or(Interest::Close)
    }

    fn drive(&mut self, mut stream: &TcpStream) -> io::Result<Interest> {
        if self.lingering {
            return self.linger(stream);
        }
        self.drained = false;
        self.cut_short = false;
        let mut turn = 0;
        loop {
            self.answer();
            // Write what we owe. While the client is not taking it, read
            // nothing more from it: what a client can make us buffer stays
            // bounded.
            while self.written < self.out.len() {
                match send(stream, &self.out[self.written..], self.closing) {
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
            if turn >= TURN_BYTES {
                self.cut_short = true;
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
                    turn += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Interest::Read),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
    // ANCHOR_END: on_ready

    // ANCHOR: answer
    /// Answers every complete head in `buf`, in order, into `out`, and
    /// keeps the unanswered rest at the front of the buffer.
    fn answer(&mut self) {
        if self.closing {
            return; // the last response is owed already
        }
        let answered = wire::answer(&self.buf[..self.filled], &mut self.out);
        self.closing = answered.close;
        self.buf.copy_within(answered.used..self.filled, 0);
        self.filled -= answered.used;
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

// ANCHOR: acceptor
/// The listening socket of an event loop, and what it takes to accept from
/// it without ever blocking, and without spinning when the process has run
/// out of file descriptors.
pub struct Acceptor {
    listener: TcpListener,
    /// A descriptor kept open for nothing (on `/dev/null`), to be given up
    /// when there is no other: see [`Acceptor::shed`].
    reserve: Option<File>,
    /// The last `accept` gave up with connections perhaps still queued.
    held_back: bool,
}

/// The most connections a loop accepts in one turn. Under a steady flood
/// of new connections the queue may never be empty, and a loop that
/// accepted until it was would never get back to the connections it
/// already has. The rest wait for the next turn.
pub const ACCEPT_BATCH: usize = 64;

/// What the descriptor in reserve is opened on.
const RESERVE: &str = "/dev/null";

/// How long `accept` pauses when it cannot take a connection and cannot
/// shed one either: short, since the whole loop waits with it.
const PAUSE: Duration = Duration::from_millis(10);

impl Acceptor {
    /// Makes `listener` non-blocking and opens the descriptor in reserve.
    pub fn new(listener: TcpListener) -> io::Result<Acceptor> {
        listener.set_nonblocking(true)?;
        Ok(Acceptor {
            listener,
            reserve: Some(File::open(RESERVE)?),
            held_back: false,
        })
    }

    pub fn listener(&self) -> &TcpListener {
        &self.listener
    }

    /// Whether the last [`Acceptor::accept`] that returned `None` did so
    /// for want of a descriptor or memory, rather than because no
    /// connection was left: an edge-triggered loop will get no new event
    /// for the ones still queued, and must try again on its own.
    pub fn held_back(&self) -> bool {
        self.held_back
    }

    /// The next connection waiting, already non-blocking, or `None` when
    /// there is none to take now. Call it until `None`, or for
    /// [`ACCEPT_BATCH`] connections in a turn.
    pub fn accept(&mut self) -> Option<TcpStream> {
        self.held_back = false;
        if self.reserve.is_none() {
            // Lost at the last shortage (see `shed`): take it back now that
            // a descriptor may be free, so it is there for the next one.
            self.reserve = File::open(RESERVE).ok();
        }
        loop {
            let error = match accept_non_blocking(&self.listener) {
                Ok(stream) => return Some(stream),
                Err(e) if out_of_descriptors(&e) => match self.shed() {
                    Ok(()) => continue, // one shed: see if more are waiting
                    Err(e) => e,
                },
                Err(e) => e,
            };
            match error.kind() {
                io::ErrorKind::WouldBlock => return None,
                // That client gave up while queued, or a signal came.
                io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted => continue,
                _ => {}
            }
            // Out of memory (ENOBUFS, ENOMEM), or out of descriptors with
            // none in reserve. The listening socket stays readable, so
            // returning at once would have the loop back here at once: a
            // busy spin. Pause instead; the loop serves what it can between
            // two such pauses.
            self.held_back = true;
            thread::sleep(PAUSE);
            return None;
        }
    }

    /// Out of descriptors: a connection at the head of the queue cannot be
    /// accepted, and left there it keeps the listening socket readable, so
    /// the loop would be woken for it again and again. So take it and
    /// close it, with the descriptor held in reserve for the purpose: give
    /// the reserve up, accept into the descriptor that frees, close the
    /// connection, and open the reserve again. Returns what that `accept`
    /// returned: `WouldBlock` if the queue was empty after all (`accept`
    /// finds no free descriptor before it looks at the queue), or the
    /// original error if there was no reserve to give up. Another thread
    /// can take the freed descriptor first; the reserve is then opened
    /// again at the next call to `accept`.
    fn shed(&mut self) -> io::Result<()> {
        let reserve = self.reserve.take().or_else(|| File::open(RESERVE).ok());
        let Some(reserve) = reserve else {
            return Err(io::Error::from(Errno::EMFILE));
        };
        drop(reserve);
        // Closed at once: the client sees its connection end unanswered.
        let shed = accept_non_blocking(&self.listener).map(drop);
        self.reserve = File::open(RESERVE).ok();
        shed
    }
}

// ANCHOR: send
/// Writes what it can of `buf`. When these are the last bytes the
/// connection sends, it says so (`MSG_MORE`: more is coming, hold on): the
/// kernel keeps them back until the close that follows at once, and sends
/// them and the FIN in one packet instead of two.
fn send(stream: &TcpStream, buf: &[u8], last: bool) -> io::Result<usize> {
    if last {
        SockRef::from(stream).send_with_flags(buf, nix::libc::MSG_MORE)
    } else {
        let mut stream = stream;
        stream.write(buf)
    }
}
// ANCHOR_END: send

/// EMFILE: this process has no descriptor left; ENFILE: the system has none.
fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE)
    )
}

/// `accept4` with `SOCK_NONBLOCK`: the new socket is non-blocking from the
/// start, which saves the `fcntl` that `set_nonblocking` would cost on
/// every connection. (`SOCK_CLOEXEC` too, as the standard library does.)
fn accept_non_blocking(listener: &TcpListener) -> io::Result<TcpStream> {
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let (socket, _peer) = SockRef::from(listener).accept4(flags.bits())?;
    Ok(socket.into())
}
// ANCHOR_END: acceptor

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    use std::net::TcpListener;
    use std::thread;
    use wire::{BAD_REQUEST, RESPONSE, RESPONSE_KEEP_ALIVE, TOO_LARGE};

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
    fn trickled_bytes_do_not_move_the_deadline() {
        let (mut client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        let deadline = conn.deadline();
        for byte in b"GET / HTTP/1.1\r\nX: a" {
            client.write_all(&[*byte]).unwrap();
            assert_eq!(settle(&mut conn, &server), Interest::Read);
            assert_eq!(conn.deadline(), deadline);
        }
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

    #[test]
    fn a_busy_client_gets_turns() {
        let (client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        // Far more pipelined requests than one turn reads, sent by another
        // thread while this one answers; the client never reads, so the
        // responses pile up in the socket buffers too.
        let request = b"GET / HTTP/1.1\r\n\r\n".repeat(20_000);
        let mut writer = client.try_clone().unwrap();
        let sending = thread::spawn(move || writer.write_all(&request));
        let mut cut = false;
        for _ in 0..50 {
            match settle(&mut conn, &server) {
                Interest::Read if conn.cut_short() => {
                    cut = true;
                    break;
                }
                Interest::Close => panic!("closed"),
                _ => {}
            }
        }
        assert!(cut, "one call never stopped to let others in");
        drop(server);
        drop(client.shutdown(Shutdown::Both));
        let _ = sending.join();
    }

    #[test]
    fn the_acceptor_takes_everything_queued_then_says_none() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut acceptor = Acceptor::new(listener).unwrap();
        assert!(acceptor.accept().is_none());
        let _clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        thread::sleep(Duration::from_millis(20));
        for _ in 0..3 {
            let stream = acceptor.accept().expect("a queued connection");
            // Non-blocking: a read with nothing to read says so at once.
            let err = (&stream).read(&mut [0; 1]).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        }
        assert!(acceptor.accept().is_none());
        assert!(!acceptor.held_back());
    }

    /// With no descriptor left, queued connections are accepted and closed
    /// (shed), and `accept` returns once the queue is empty, at once: an
    /// `accept` on an empty queue fails with EMFILE too, and must not be
    /// taken for a connection waiting. Lowering the descriptor limit would
    /// hurt the other tests of this process, so this runs in a child: this
    /// same test binary, running this test alone.
    #[test]
    fn out_of_descriptors_sheds_then_returns() {
        const CHILD: &str = "CONN_TEST_OUT_OF_DESCRIPTORS";
        if std::env::var_os(CHILD).is_none() {
            let status = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "tests::out_of_descriptors_sheds_then_returns"])
                .env(CHILD, "1")
                .status()
                .unwrap();
            assert!(status.success(), "{status}");
            return;
        }
        // A hang here is the bug: end it rather than hang the test run.
        thread::spawn(|| {
            thread::sleep(Duration::from_secs(10));
            eprintln!("accept never returned");
            std::process::abort();
        });
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut acceptor = Acceptor::new(listener).unwrap();
        let mut clients: Vec<_> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        // Take every descriptor left.
        let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        setrlimit(Resource::RLIMIT_NOFILE, 256, hard).unwrap();
        let mut hoard = Vec::new();
        while let Ok(file) = File::open(RESERVE) {
            hoard.push(file);
        }
        assert!(acceptor.accept().is_none());
        assert!(!acceptor.held_back());
        for client in &mut clients {
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            match client.read(&mut [0; 1]) {
                Ok(0) => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                other => panic!("not shed: {other:?}"),
            }
        }
        // The queue is empty now, and `accept` says so.
        assert!(acceptor.accept().is_none());
        // With descriptors free again (one for our client, one for the
        // server's end), connections are accepted again.
        hoard.truncate(hoard.len() - 2);
        let _client = TcpStream::connect(addr).unwrap();
        thread::sleep(Duration::from_millis(20));
        assert!(acceptor.accept().is_some());
    }
}
