//! One connection of an event-driven server: what it has read, what it
//! still owes the client, and what it waits for next. The event loops of
//! the readiness chapters (select, poll, epoll) differ only in how they
//! learn that a socket is ready; each hands the socket to
//! [`Conn::on_ready`], which does as much as the socket allows without
//! blocking and says what to wait for next. They take connections the same
//! way too, from an [`Acceptor`]. The io_uring server keeps its
//! connections in a `Conn` as well, but does their reads and writes its own
//! way, and tells the `Conn` how each went: [`Conn::received`],
//! [`Conn::sent`].

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::epoll::EpollTimeout;
use nix::sys::socket::SockFlag;
use socket2::SockRef;

use wire::{HEAD_LIMIT, HEAD_TIMEOUT, LINGER, LINGER_BYTES, Requests, Work};

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

/// The most one call to [`Conn::on_ready`] reads before it lets the other
/// connections have a turn: see [`Conn::cut_short`].
const TURN_BYTES: usize = 64 * 1024;

// ANCHOR: conn
/// The state of one connection between two readiness events.
pub struct Conn {
    /// Bytes received and not yet answered: part of a head, or several
    /// pipelined requests. (A body is thrown away as it comes.)
    buf: Box<[u8; HEAD_LIMIT]>,
    filled: usize,
    /// Where the client is in its requests: between two, or in a body.
    requests: Requests,
    /// Responses owed, and how much of them the socket has taken.
    out: Vec<u8>,
    written: usize,
    /// Where the connection is in its life.
    state: State,
    /// When the connection is given up: [`HEAD_TIMEOUT`] after it was
    /// accepted or last had a response written, [`LINGER`] once it lingers.
    deadline: Instant,
    /// The last read filled the buffer: the client may have sent more.
    full: bool,
}

/// Where a connection is in its life. It starts open, may be closing
/// after that, and lingering after that; it can be closed in any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading requests, and answering each as soon as its head is
    /// complete.
    Open,
    /// Open, but the last [`Conn::on_ready`] stopped reading after
    /// [`TURN_BYTES`], with bytes perhaps still unread, so that one busy
    /// client cannot keep the loop to itself.
    CutShort,
    /// The last response is owed: the client asked to close, or sent a
    /// head we refuse. Nothing more is read until that response is
    /// written, and then the connection ends. `unread`: the client may
    /// have sent more than we will ever read.
    Closing { unread: bool },
    /// Our FIN is sent. What the client still sends is read and thrown
    /// away, `discarded` bytes so far, until it closes too.
    Lingering { discarded: usize },
}
// ANCHOR_END: conn

impl Conn {
    /// A connection just accepted. To call [`Conn::on_ready`] with it, its
    /// socket must be non-blocking.
    pub fn new(now: Instant) -> Conn {
        Conn {
            buf: Box::new([0; HEAD_LIMIT]),
            filled: 0,
            requests: Requests::default(),
            out: Vec::new(),
            written: 0,
            state: State::Open,
            deadline: now + HEAD_TIMEOUT,
            full: false,
        }
    }

    // ANCHOR: handing_off
    /// A connection whose requests' work is done elsewhere: when a request
    /// asks for work, [`Conn::on_ready`] stops reading and answering, and
    /// [`Conn::work`] says what to do. Once it is done, [`Conn::work_done`]
    /// adds its response; the next `on_ready` writes it and goes on.
    pub fn handing_off(now: Instant) -> Conn {
        Conn {
            requests: Requests::handing_off(),
            ..Conn::new(now)
        }
    }

    /// The work this connection waits for, if it does.
    pub fn work(&self) -> Option<Work> {
        self.requests.handed_out()
    }

    /// The work [`Conn::work`] said is done: its response is owed, and the
    /// requests received after it are answered, up to the next that asks
    /// for work. Returns what to do next, as [`Conn::received`] does.
    pub fn work_done(&mut self) -> Interest {
        if self.requests.done(&mut self.out) {
            self.state = State::Closing {
                unread: self.filled > 0 || self.full,
            };
            return Interest::Write;
        }
        self.answer()
    }
    // ANCHOR_END: handing_off

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
        self.state == State::CutShort
    }
    // ANCHOR_END: cut_short

    // ANCHOR: on_ready
    /// Does all the work the socket allows now: read what has arrived,
    /// answer every complete head in order, write until the socket takes no
    /// more. Returns what to wait for next. Errors (a reset, say) concern
    /// this client only and come back as [`Interest::Close`].
    ///
    /// It reads until a read comes back short, which means the socket had
    /// no more data (epoll(7) says so for stream sockets); or until it has
    /// read its turn's worth, which [`Conn::cut_short`] then says. A short
    /// read says nothing of the end of the stream: the client's FIN may
    /// have come with its last bytes, and only one more read would see it.
    /// A level-triggered loop hears of it, since a socket at its end stays
    /// readable; an edge-triggered one must ask epoll to say so
    /// (`EPOLLRDHUP`), and then call again.
    pub fn on_ready(&mut self, stream: &TcpStream) -> Interest {
        self.drive(stream).unwrap_or(Interest::Close)
    }

    fn drive(&mut self, mut stream: &TcpStream) -> io::Result<Interest> {
        if self.state == State::CutShort {
            self.state = State::Open;
        }
        // Start with what the connection waits for.
        let mut next = if self.unsent().is_empty() {
            Interest::Read
        } else {
            Interest::Write
        };
        let mut drained = false;
        let mut turn = 0;
        loop {
            next = match next {
                Interest::Close => return Ok(Interest::Close),
                Interest::Write => {
                    match send(stream, self.unsent(), self.closing()) {
                        Ok(0) => Interest::Close,
                        Ok(n) => self.sent(n, stream)?,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Ok(Interest::Write);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                            Interest::Write
                        }
                        Err(e) => return Err(e),
                    }
                }
                // Two reasons to stop reading an open connection. The
                // last read came back short: the socket had no more data,
                // and another read now would say `WouldBlock` (or 0, if the
                // client's FIN came with its last bytes: see above). A
                // lingering one reads on: a read of 0 lets it close at once.
                // Or a request waits for its work, done elsewhere: the
                // next request is not read before this one is answered.
                Interest::Read if self.work().is_some() => return Ok(Interest::Read),
                Interest::Read if self.state == State::Open && drained => {
                    return Ok(Interest::Read);
                }
                // Or it has had its turn.
                Interest::Read if self.state == State::Open && turn >= TURN_BYTES => {
                    self.state = State::CutShort;
                    return Ok(Interest::Read);
                }
                Interest::Read => {
                    let space = self.space();
                    let room = space.len();
                    match stream.read(space) {
                        // The client closed its side. What it sent is
                        // answered by now; a head it left unfinished never is.
                        Ok(0) => Interest::Close,
                        Ok(n) => {
                            drained = n < room;
                            turn += n;
                            self.received(n)
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            return Ok(Interest::Read);
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                            Interest::Read
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
        }
    }
    // ANCHOR_END: on_ready

    // ANCHOR: received
    /// Where the next bytes read go: after those not answered yet or, once
    /// the connection lingers, anywhere in the buffer, since they are
    /// thrown away.
    ///
    /// The buffer is on the heap, and `Conn` writes to it only in
    /// [`Conn::received`]. So a server may lend it to the kernel until the
    /// read is done (the io_uring server does).
    pub fn space(&mut self) -> &mut [u8] {
        match self.state {
            State::Lingering { .. } => &mut self.buf[..],
            _ => &mut self.buf[self.filled..],
        }
    }

    /// `n` bytes were read into [`Conn::space`]. Answers every complete
    /// request in order, into the responses owed, and keeps the unanswered
    /// rest at the front of the buffer; or, once lingering, counts what it
    /// throws away. Returns what to do next: write what is now owed, read
    /// more, or close.
    pub fn received(&mut self, n: usize) -> Interest {
        if let State::Lingering { discarded } = &mut self.state {
            *discarded += n;
            return if *discarded > LINGER_BYTES {
                Interest::Close
            } else {
                Interest::Read
            };
        }
        debug_assert!(!self.closing(), "nothing is read while closing");
        // A read that took all the room there was may have left more.
        self.full = n == self.buf.len() - self.filled;
        self.filled += n;
        self.answer()
    }

    /// Answers the complete requests in the buffer, and keeps the rest.
    fn answer(&mut self) -> Interest {
        let unanswered = &self.buf[..self.filled];
        let answered = self.requests.answer(unanswered, &mut self.out);
        self.buf.copy_within(answered.used..self.filled, 0);
        self.filled -= answered.used;
        if answered.close {
            let unread = self.filled > 0 || self.full;
            self.state = State::Closing { unread };
        }
        // While the client is not taking what it is owed, nothing more is
        // read from it: what a client can make us buffer stays bounded.
        if self.out.is_empty() {
            Interest::Read
        } else {
            Interest::Write
        }
    }
    // ANCHOR_END: received

    // ANCHOR: sent
    /// The responses owed and not written yet. Like [`Conn::space`], they
    /// are on the heap, and `Conn` changes them only in [`Conn::sent`], and
    /// in [`Conn::received`] when nothing is owed.
    pub fn unsent(&self) -> &[u8] {
        &self.out[self.written..]
    }

    /// Whether [`Conn::unsent`] ends with the last bytes of the connection.
    pub fn closing(&self) -> bool {
        matches!(self.state, State::Closing { .. })
    }

    /// `n` bytes of [`Conn::unsent`] were written. Returns what to do next:
    /// write the rest; or, everything written, read the next request, or
    /// end the connection (with a `shutdown` of `stream` if it lingers).
    pub fn sent(&mut self, n: usize, stream: &TcpStream) -> io::Result<Interest> {
        self.sent_with(n, || stream.shutdown(Shutdown::Write))
    }

    /// [`Conn::sent`] for a socket the caller reaches its own way (the
    /// io_uring server's direct descriptors are no descriptor of the
    /// process): `shutdown` shuts its sending side, if that is due.
    pub fn sent_with(
        &mut self,
        n: usize,
        shutdown: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<Interest> {
        self.written += n;
        if self.written < self.out.len() {
            return Ok(Interest::Write);
        }
        // Everything owed is written: the clock starts again.
        self.out.clear();
        self.written = 0;
        self.deadline = Instant::now() + HEAD_TIMEOUT;
        match self.state {
            State::Closing { unread } => self.close(unread, shutdown),
            _ => Ok(Interest::Read),
        }
    }
    // ANCHOR_END: sent

    // ANCHOR: close
    /// The last response is written. A connection with nothing more to read
    /// is closed at once. One whose client sent more (a head we refused,
    /// requests after a `close`) must not be closed with those bytes
    /// unread: the kernel would answer them with a reset, which can destroy
    /// the response on its way. So we send our FIN, and read and discard
    /// until the client closes too, for [`LINGER`] and [`LINGER_BYTES`] at
    /// most.
    fn close(
        &mut self,
        unread: bool,
        shutdown: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<Interest> {
        if !unread {
            return Ok(Interest::Close);
        }
        shutdown()?;
        self.state = State::Lingering { discarded: 0 };
        self.deadline = Instant::now() + LINGER;
        Ok(Interest::Read)
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
                io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted => {
                    continue;
                }
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

// ANCHOR: epoll_timeout
/// How long `epoll_wait` may sleep to wake by `t`: the time from now, in
/// whole milliseconds rounded up. Rounded down, a wait due in half a
/// millisecond would return at once, and the loop would spin until it was
/// due.
pub fn epoll_timeout(t: Instant) -> EpollTimeout {
    let ms = t
        .saturating_duration_since(Instant::now())
        .as_micros()
        .div_ceil(1000);
    EpollTimeout::try_from(ms).unwrap_or(EpollTimeout::MAX)
}
// ANCHOR_END: epoll_timeout

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
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
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
                b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HT",
            )
            .unwrap();
        assert_eq!(settle(&mut conn, &server), Interest::Read);
        client
            .write_all(b"TP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(settle(&mut conn, &server), Interest::Close);
        drop(server);
        let want = [RESPONSE_KEEP_ALIVE, RESPONSE_KEEP_ALIVE, RESPONSE].concat();
        assert_eq!(read_all(&mut client), want);
    }

    /// `received` and `sent` as a server uses them that does its own I/O
    /// (the io_uring server): told how many bytes each read and write
    /// moved, they say what comes next.
    #[test]
    fn told_what_each_read_and_write_did() {
        let (mut client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        let heads = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\n\r\nmore";
        conn.space()[..heads.len()].copy_from_slice(heads);
        assert_eq!(conn.received(heads.len()), Interest::Write);
        assert!(conn.closing());
        let want = [RESPONSE_KEEP_ALIVE, RESPONSE].concat();
        assert_eq!(conn.unsent(), want);
        // A short write: the rest is still owed.
        assert_eq!(conn.sent(10, &server).unwrap(), Interest::Write);
        assert_eq!(conn.unsent(), &want[10..]);
        // All written, with "more" unread: our FIN, then the linger, which
        // throws away what comes into the whole buffer.
        assert_eq!(conn.sent(want.len() - 10, &server).unwrap(), Interest::Read);
        assert_eq!(read_all(&mut client), b"", "the FIN");
        assert_eq!(conn.space().len(), HEAD_LIMIT);
        assert_eq!(conn.received(LINGER_BYTES), Interest::Read);
        assert_eq!(conn.received(1), Interest::Close);
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
        let mut head = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        head.resize(HEAD_LIMIT + 100, b'a');
        client.write_all(&head).unwrap();
        // The 431 is sent once the buffer is full; the rest is discarded.
        let lingering = |conn: &Conn| matches!(conn.state, State::Lingering { .. });
        for _ in 0..10 {
            if settle(&mut conn, &server) == Interest::Close || lingering(&conn) {
                break;
            }
        }
        assert!(lingering(&conn));
        client.shutdown(Shutdown::Write).unwrap();
        let got = read_all(&mut client);
        assert_eq!(got, TOO_LARGE);
    }

    #[test]
    fn more_pipelined_requests_than_the_buffer_holds() {
        let (mut client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        // 27 KiB of heads, through an 8 KiB buffer: heads cut at the end of
        // one read are finished by the next.
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
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
    fn a_body_is_thrown_away_not_answered() {
        let (mut client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        // A body three times the buffer, made of what look like requests.
        let body = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
        let head = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        client.write_all(head.as_bytes()).unwrap();
        client.write_all(&body).unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut rounds = 0;
        while settle(&mut conn, &server) != Interest::Close {
            rounds += 1;
            assert!(rounds < 100, "never finished");
        }
        drop(server);
        let want = [RESPONSE_KEEP_ALIVE, RESPONSE].concat();
        assert_eq!(read_all(&mut client), want);
    }

    /// The contract an edge-triggered loop must know: when the client's FIN
    /// comes with its last bytes, `on_ready` answers them and stops at the
    /// short read, before the end of the stream; one more call finds it.
    #[test]
    fn a_fin_behind_the_last_bytes_takes_one_more_call() {
        let (mut client, server) = pair();
        let mut conn = Conn::new(Instant::now());
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(settle(&mut conn, &server), Interest::Read);
        assert_eq!(conn.on_ready(&server), Interest::Close);
        drop(server);
        assert_eq!(read_all(&mut client), RESPONSE_KEEP_ALIVE);
    }

    /// Work handed off: nothing is read or answered past the request that
    /// waits for it, and once it is done, the responses go out in order.
    #[test]
    fn work_done_elsewhere() {
        let (mut client, server) = pair();
        let mut conn = Conn::handing_off(Instant::now());
        client
            .write_all(
                b"GET /cpu/1 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\n\r\n",
            )
            .unwrap();
        assert_eq!(settle(&mut conn, &server), Interest::Read);
        assert_eq!(conn.work(), Some(Work::Cpu(Duration::from_micros(1))));
        assert_eq!(conn.on_ready(&server), Interest::Read);
        assert_eq!(conn.work_done(), Interest::Write);
        assert_eq!(conn.work(), None);
        assert_eq!(conn.on_ready(&server), Interest::Close);
        drop(server);
        assert_eq!(
            read_all(&mut client),
            [RESPONSE_KEEP_ALIVE, RESPONSE].concat()
        );
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
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20_000);
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
        let _clients: Vec<_> =
            (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
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
        let mut clients: Vec<_> =
            (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
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
