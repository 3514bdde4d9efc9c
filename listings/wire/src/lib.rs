//! What every server in the book shares: the bytes it answers with, how it
//! recognises a complete request head and where the request ends, and how
//! a blocking server serves one connection. Each model differs only in how it gets connections to this
//! code; the code itself stays the same.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

// ANCHOR: responses
/// The answer to every request, for a client that will not reuse its
/// connection: the server closes the connection right after it.
pub const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\nHello world";

/// The same answer for a client that keeps its connection open.
pub const RESPONSE_KEEP_ALIVE: &[u8] =
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\
Content-Length: 11\r\n\r\nHello world";

/// What a client that asked (`Expect: 100-continue`) gets before it sends
/// its body, from a server that will read the body: go on. An interim
/// response; the real one follows.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// A request head longer than [`HEAD_LIMIT`] gets this, and a close.
pub const TOO_LARGE: &[u8] = b"HTTP/1.1 431 Request Header Fields Too Large\r\n\
Connection: close\r\nContent-Length: 0\r\n\r\n";

/// A head that is not HTTP/1.x, or whose body cannot be told apart from
/// what follows it, gets this, and a close.
pub const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// A body announced longer than [`BODY_LIMIT`] gets this, and a close.
pub const CONTENT_TOO_LARGE: &[u8] = b"HTTP/1.1 413 Content Too Large\r\n\
Connection: close\r\nContent-Length: 0\r\n\r\n";

/// A body sent with `Transfer-Encoding` (in pieces, `chunked`) rather than
/// with a `Content-Length` gets this, and a close.
pub const LENGTH_REQUIRED: &[u8] =
    b"HTTP/1.1 411 Length Required\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// A target that asks for malformed work, or for more than [`WORK_LIMIT`],
/// gets this, and a close. Its body says what may be asked.
pub const BAD_WORK: &[u8] = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\
Content-Length: 47\r\n\r\n/cpu/N: N <= 1000000 us; /sleep/N: N <= 1000 ms";
// ANCHOR_END: responses

// ANCHOR: limits
/// The longest request head a server reads, blank line included.
pub const HEAD_LIMIT: usize = 8 * 1024;

/// The longest request body a server reads (to throw it away: no server
/// here has a use for one). nginx's default, `client_max_body_size`, is
/// the same.
pub const BODY_LIMIT: u64 = 1024 * 1024;

/// How long a server waits for a whole request, head and body, counted from
/// the connection's start or the last response (and how long a blocking
/// server waits for the client to take a response), before it gives up on
/// the connection.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
// ANCHOR_END: limits

/// Where a server listens when no address is given.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9527";

// ANCHOR: workers
/// How many workers a server with a fixed number of them starts: its second
/// argument, or one per CPU this process may run on.
pub fn workers(arg: Option<String>) -> io::Result<usize> {
    let Some(text) = arg else {
        return Ok(thread::available_parallelism().map_or(1, usize::from));
    };
    match text.parse() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "the number of workers must be a whole number above 0, not {text:?}"
            ),
        )),
    }
}
// ANCHOR_END: workers

// ANCHOR: parse
/// What the bytes received so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// No blank line yet, nothing wrong so far, and still under the limit:
    /// read more.
    Partial,
    /// A complete, well-formed head.
    Complete(Request),
    /// A head refused: the response that says why (`400`, `411`, `413` or
    /// `431`). The connection ends after it.
    Refused(&'static [u8]),
}

/// A complete request head, and what it says about what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The head's length, blank line included.
    pub len: usize,
    /// The client asked to keep the connection open.
    pub keep_alive: bool,
    /// The length of the body that follows the head: its `Content-Length`,
    /// or 0 without one.
    pub body: u64,
    /// The client waits for [`CONTINUE`] before it sends its body.
    pub expects_continue: bool,
    /// What the target asks the server to do before it answers.
    pub work: Work,
}

/// Looks at the start of `buf` for one request head, a line at a time.
/// Every line must end in "\r\n", and is checked as soon as it is
/// complete, so a head that cannot become a request is refused at once,
/// without waiting for a blank line that may never come.
pub fn parse_head(buf: &[u8]) -> Head {
    let buf = &buf[..buf.len().min(HEAD_LIMIT)];
    let mut version = None;
    let mut work = Work::Nothing;
    let mut fields = Fields::default();
    let mut start = 0;
    while let Some(lf) = buf[start..].iter().position(|&b| b == b'\n') {
        let end = start + lf + 1;
        // A line must end in "\r\n". One that ends in a bare "\n" is
        // refused, at once: a server and a proxy in front of it must agree
        // on where every line ends, and that is the one rule both know.
        let Some(line) = buf[start..end - 1].strip_suffix(b"\r") else {
            return Head::Refused(BAD_REQUEST);
        };
        let well_formed = match version {
            None => match request_line(line) {
                Some((_, None)) => return Head::Refused(BAD_WORK),
                Some((v, Some(w))) => {
                    (version, work) = (Some(v), w);
                    true
                }
                None => false,
            },
            Some(version) if line.is_empty() => {
                return fields.request(version, work, end);
            }
            Some(_) => fields.add(line).is_some(),
        };
        if !well_formed {
            return Head::Refused(BAD_REQUEST);
        }
        start = end;
    }
    if version.is_none() && !may_be_request(buf) {
        Head::Refused(BAD_REQUEST)
    } else if buf.len() == HEAD_LIMIT {
        Head::Refused(TOO_LARGE)
    } else {
        Head::Partial
    }
}
// ANCHOR_END: parse

/// HTTP/1.0 or HTTP/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Http10,
    Http11,
}

/// Checks a request line: a method, a target and a version, one space
/// apart. With the version comes the work the target asks for, or `None`
/// if that is malformed.
fn request_line(line: &[u8]) -> Option<(Version, Option<Work>)> {
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_token(method) || target.is_empty() {
        return None;
    }
    if target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return None;
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        _ => return None,
    };
    Some((version, Work::from_target(target)))
}

// ANCHOR: fields
/// What the header lines of a head have said so far, about where the
/// request ends and what comes after it. Every other header is checked
/// for its form, and ignored.
#[derive(Debug, Default)]
struct Fields {
    host: bool,
    content_length: Option<u64>,
    transfer_encoding: bool,
    close: bool,
    keep_alive: bool,
    expects_continue: bool,
}

impl Fields {
    /// Checks one header line, `name: value`, and notes what it says.
    fn add(&mut self, line: &[u8]) -> Option<()> {
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if !is_token(name)
            || value.iter().any(|&b| (b < b' ' && b != b'\t') || b == 0x7f)
        {
            return None;
        }
        let value = value.trim_ascii();
        let is = |header: &str| name.eq_ignore_ascii_case(header.as_bytes());
        if is("host") {
            // Exactly one, with a value that can be a host (and a port).
            if self.host || !value.iter().all(|&b| is_host_char(b)) {
                return None;
            }
            self.host = true;
        } else if is("content-length") {
            // One, and a number: two lengths, even equal ones, or a list,
            // leave it to the reader to pick one, and a proxy may pick
            // the other.
            if self.content_length.is_some() {
                return None;
            }
            self.content_length = Some(length(value)?);
        } else if is("transfer-encoding") {
            self.transfer_encoding = true;
        } else if is("connection") {
            for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                self.close |= option.eq_ignore_ascii_case(b"close");
                self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if is("expect") {
            self.expects_continue |= value.eq_ignore_ascii_case(b"100-continue");
        }
        Some(())
    }

    /// The head is complete, `len` bytes long: what the request is, or why
    /// it is refused.
    fn request(&self, version: Version, work: Work, len: usize) -> Head {
        let http11 = version == Version::Http11;
        if http11 && !self.host {
            return Head::Refused(BAD_REQUEST);
        }
        let body = match (self.content_length, self.transfer_encoding) {
            (None, false) => 0,
            (Some(length), false) if length <= BODY_LIMIT => length,
            (Some(_), false) => return Head::Refused(CONTENT_TOO_LARGE),
            // Two ways to tell where the body ends: which one wins is
            // what request smuggling exploits.
            (Some(_), true) => return Head::Refused(BAD_REQUEST),
            // A body in chunks, which we do not decode.
            (None, true) => return Head::Refused(LENGTH_REQUIRED),
        };
        Head::Complete(Request {
            len,
            // `close` wins: with it among the options, the connection ends.
            // Otherwise HTTP/1.1 keeps it, and HTTP/1.0 only when asked.
            keep_alive: !self.close && (http11 || self.keep_alive),
            body,
            // HTTP/1.0 clients cannot have meant it, and without a body
            // there is nothing to wait for.
            expects_continue: http11 && self.expects_continue && body > 0,
            work,
        })
    }
}
// ANCHOR_END: fields

/// A `Content-Length`: one or more digits. A number too large for a `u64`
/// is still a number, and over any limit.
fn length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0u64, |n, &digit| {
        n.saturating_mul(10).saturating_add(u64::from(digit - b'0'))
    }))
}

/// An HTTP token: the characters a method or a header name may use.
fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_token_char(b))
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What a `Host` value may contain: a name, an IPv4 address or an IPv6
/// one in brackets, a colon and a port, percent-escapes.
fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:%[]".contains(&b)
}

// ANCHOR: may_be_request
/// Whether the start of a head, with no line complete yet, may still become
/// a request: whether it starts with a method, or with what may be the
/// start of one. A TLS handshake or binary junk fails on its first byte,
/// and gets its 400 at once instead of holding the connection open until
/// the head timeout, waiting for a blank line that will never come.
fn may_be_request(buf: &[u8]) -> bool {
    match buf.iter().position(|&b| b == b' ') {
        Some(space) => is_token(&buf[..space]),
        None => buf.iter().all(|&b| is_token_char(b)),
    }
}
// ANCHOR_END: may_be_request

// ANCHOR: answer
/// What [`Requests::answer`] made of the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// How many bytes, from the start, were taken: heads answered, and
    /// bodies read and thrown away. What follows is the start of the next
    /// head, or a head that was refused.
    pub used: usize,
    /// The last response ends the connection: the client asked for that,
    /// or sent a head we refuse. A refused head is not counted in `used`,
    /// so that bytes left over say the client had more to say.
    pub close: bool,
}

/// Where a connection is in the stream of requests its client sends, from
/// one call of [`Requests::answer`] to the next: between two requests, or
/// in the body of one. What follows a head is its body, for as many bytes
/// as its `Content-Length` says, and only after them does the next request
/// start. Each request is answered once its body has been read (and thrown
/// away).
#[derive(Debug, Default)]
pub struct Requests {
    /// The request whose body is being read, if one is.
    reading: Option<Body>,
    /// Whether work is handed off rather than done here: see
    /// [`Requests::handing_off`].
    hand_off: bool,
}

#[derive(Debug, Clone, Copy)]
struct Body {
    /// How many bytes of it are still to come.
    left: u64,
    /// Whether its client wants the connection kept.
    keep_alive: bool,
    /// What its target asks the server to do before answering.
    work: Work,
}

impl Requests {
    /// Appends to `out` a response for every complete request at the start
    /// of `buf`, in the order they came: a client may send several before
    /// it reads any answer (pipelining). Stops at a partial head, or in a
    /// body that is not all there yet, and after the first response that
    /// ends the connection.
    pub fn answer(&mut self, buf: &[u8], out: &mut Vec<u8>) -> Answered {
        let mut used = 0;
        loop {
            if let Some(body) = &mut self.reading {
                let here = (buf.len() - used) as u64;
                let taken = body.left.min(here);
                used += taken as usize; // at most buf.len()
                body.left -= taken;
                if body.left > 0 {
                    return Answered { used, close: false };
                }
                // The request is complete: do what it asks, then answer it.
                // Or, handing work off, stop here until it is done.
                if self.hand_off && body.work != Work::Nothing {
                    return Answered { used, close: false };
                }
                let Body {
                    keep_alive, work, ..
                } = *body;
                self.reading = None;
                work.run();
                if !keep_alive {
                    out.extend_from_slice(RESPONSE);
                    return Answered { used, close: true };
                }
                out.extend_from_slice(RESPONSE_KEEP_ALIVE);
            }
            match parse_head(&buf[used..]) {
                Head::Partial => return Answered { used, close: false },
                Head::Complete(request) => {
                    used += request.len;
                    if request.expects_continue {
                        out.extend_from_slice(CONTINUE);
                    }
                    self.reading = Some(Body {
                        left: request.body,
                        keep_alive: request.keep_alive,
                        work: request.work,
                    });
                }
                Head::Refused(response) => {
                    out.extend_from_slice(response);
                    return Answered { used, close: true };
                }
            }
        }
    }
}
// ANCHOR_END: answer

// ANCHOR: hand_off
impl Requests {
    /// Requests whose work is done elsewhere: [`Requests::answer`] stops at
    /// a complete request that asks for work, before doing it, and answers
    /// nothing more until [`Requests::done`] says it is done. What to do
    /// is [`Requests::handed_out`]. The order of the responses stays the
    /// order of the requests.
    pub fn handing_off() -> Requests {
        Requests {
            hand_off: true,
            ..Requests::default()
        }
    }

    /// The work of the request `answer` stopped at, if it did.
    pub fn handed_out(&self) -> Option<Work> {
        match self.reading {
            Some(body) if self.hand_off && body.left == 0 => Some(body.work),
            _ => None,
        }
    }

    /// The work handed out is done: appends its request's response to
    /// `out`, and returns whether it ends the connection. Then `answer`
    /// goes on with the requests after it.
    pub fn done(&mut self, out: &mut Vec<u8>) -> bool {
        debug_assert!(self.handed_out().is_some(), "no work was handed out");
        let Some(Body { keep_alive, .. }) = self.reading.take() else {
            return false;
        };
        out.extend_from_slice(if keep_alive {
            RESPONSE_KEEP_ALIVE
        } else {
            RESPONSE
        });
        !keep_alive
    }
}
// ANCHOR_END: hand_off

// ANCHOR: listen
/// How many connections the kernel may hold for a server that has not yet
/// taken them with `accept`: the length of its accept queue, which every
/// listing asks for. `TcpListener::bind` asks for 128; the post asked for
/// 1024. The kernel caps it at `net.core.somaxconn` (4096 by default since
/// Linux 5.4). A client whose connection finds the queue full is not told:
/// its handshake is dropped, and it tries again a second later.
pub const BACKLOG: i32 = 1024;

/// Binds a listening socket to `addr` (default [`DEFAULT_ADDR`]) and asks
/// for a queue of [`BACKLOG`], or of `LISTEN_BACKLOG` if that variable is
/// set (the benchmark's backlog experiment sets it). As `TcpListener::bind`
/// does, it sets `SO_REUSEADDR`, so that a restarted server can bind while
/// connections of its last run linger in TIME_WAIT, and tries each address
/// the name resolves to until one binds.
pub fn listen(addr: Option<&str>) -> io::Result<TcpListener> {
    let addr = addr.unwrap_or(DEFAULT_ADDR);
    let backlog = match std::env::var("LISTEN_BACKLOG") {
        Ok(n) => n
            .parse()
            .map_err(|_| invalid(format!("LISTEN_BACKLOG={n}")))?,
        Err(_) => BACKLOG,
    };
    let mut last = invalid(format!("{addr} names no address"));
    for addr in addr.to_socket_addrs()? {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        socket.set_reuse_address(true)?;
        match socket
            .bind(&addr.into())
            .and_then(|()| socket.listen(backlog))
        {
            Ok(()) => return Ok(socket.into()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}
// ANCHOR_END: listen

// ANCHOR: work
/// The most work one request may ask for, either way: a target asking for
/// more is refused with [`BAD_WORK`].
pub const WORK_LIMIT: Duration = Duration::from_secs(1);

/// The work a request's target asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Work {
    /// Any target other than the two below, `/` among them: none.
    #[default]
    Nothing,
    /// `/cpu/N`: compute for N microseconds, as a handler that renders a
    /// page or checks a password would.
    Cpu(Duration),
    /// `/sleep/N`: block the thread for N milliseconds in one call, as a
    /// handler waiting on a synchronous database driver would.
    Sleep(Duration),
}

impl Work {
    /// The work `target` asks for, or `None` if it names work malformed or
    /// over [`WORK_LIMIT`] (`/cpu/x`, `/sleep/99999999`).
    pub fn from_target(target: &[u8]) -> Option<Work> {
        if let Some(n) = target.strip_prefix(b"/cpu/") {
            Some(Work::Cpu(Duration::from_micros(number(n)?)))
        } else if let Some(n) = target.strip_prefix(b"/sleep/") {
            Some(Work::Sleep(Duration::from_millis(number(n)?)))
        } else {
            return Some(Work::Nothing);
        }
        .filter(|work| work.length() <= WORK_LIMIT)
    }

    /// How long the work takes.
    pub fn length(self) -> Duration {
        match self {
            Work::Nothing => Duration::ZERO,
            Work::Cpu(length) | Work::Sleep(length) => length,
        }
    }

    /// Does the work, on the calling thread, and returns when it is done.
    pub fn run(self) {
        match self {
            Work::Nothing => {}
            Work::Cpu(length) => {
                let start = Instant::now();
                let mut sum = 0u64;
                while start.elapsed() < length {
                    // Work the optimiser cannot remove.
                    sum = std::hint::black_box(sum.wrapping_mul(31).wrapping_add(1));
                }
            }
            Work::Sleep(length) => std::thread::sleep(length),
        }
    }
}

/// Up to seven decimal digits, nothing else: enough for any number under
/// the limit in either unit.
fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 7 || !digits.iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    Some(digits.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}
// ANCHOR_END: work

// ANCHOR: accept
/// Waits for the next connection on a blocking listener. Errors here concern
/// one client (it gave up before we took it) or a passing shortage (no
/// descriptor or memory left): neither is a reason to stop serving.
pub fn accept(listener: &TcpListener) -> TcpStream {
    loop {
        match listener.accept() {
            Ok((stream, _peer)) => return stream,
            Err(e) => match e.kind() {
                io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted => {}
                // EMFILE and friends: pause, or this loop would spin at 100% CPU
                // retrying an accept that cannot succeed until a client leaves.
                _ => thread::sleep(Duration::from_millis(10)),
            },
        }
    }
}
// ANCHOR_END: accept

// ANCHOR: serve
/// Serves one connection the blocking way: read until the head is complete,
/// write the response, close. A body after the head is never read: the
/// response says the connection ends with it, so no byte after the head
/// can be taken for another request. Errors concern this client only; the
/// caller drops them and moves on.
pub fn serve(mut stream: TcpStream) -> io::Result<()> {
    // A client that stops sending, or sends too slowly, costs us at most
    // this long: the whole head must be in by then (see `read_before`).
    let deadline = Instant::now() + HEAD_TIMEOUT;
    // One that stops reading, this long per write.
    stream.set_write_timeout(Some(HEAD_TIMEOUT))?;

    let mut buf = [0u8; HEAD_LIMIT];
    let mut filled = 0;
    let (response, used, body) = loop {
        let n = match read_before(&mut stream, &mut buf[filled..], deadline) {
            Ok(0) => return Ok(()), // the client left before finishing its head
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e), // a reset, or the deadline
        };
        filled += n;
        match parse_head(&buf[..filled]) {
            Head::Partial => continue, // a short read: the head goes on
            Head::Complete(request) => {
                request.work.run();
                break (RESPONSE, request.len, request.body);
            }
            Head::Refused(refusal) => break (refusal, filled, 0),
        }
    };
    // write_all resumes after short writes and retries on EINTR.
    stream.write_all(response)?;
    if response != RESPONSE || filled > used || body > 0 {
        // The client may still be sending: a refused head, bytes after the
        // head, or a body, none of which we will ever read.
        close_gently(stream);
    }
    Ok(()) // dropping `stream` closes the connection
}
// ANCHOR_END: serve

// ANCHOR: read_before
/// Reads what has arrived, waiting no later than `deadline`. A socket's
/// read timeout (`SO_RCVTIMEO`) bounds one read: a client that sends a
/// byte just before each timeout would never meet it. So before every read
/// the timeout is set to what is left of the deadline, and once nothing is
/// left the read is not made at all.
fn read_before(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> io::Result<usize> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    // A zero timeout would mean "no timeout": it is ruled out just above.
    stream.set_read_timeout(Some(remaining))?;
    stream.read(buf)
}
// ANCHOR_END: read_before

// ANCHOR: serve_keep_alive
/// Serves one connection the blocking way for as long as the client keeps
/// it: every complete request is answered in order, however many arrive in
/// one read (a client may send several before reading any answer, which
/// is called pipelining), with [`RESPONSE_KEEP_ALIVE`] while the client
/// wants the connection kept, and [`RESPONSE`] then a close when it does
/// not. Each request, head and body, must be complete within
/// [`HEAD_TIMEOUT`] of the connection's start or of the previous response,
/// so an idle connection is closed after that long; until then, it holds
/// the calling thread.
pub fn serve_keep_alive(mut stream: TcpStream) -> io::Result<()> {
    stream.set_write_timeout(Some(HEAD_TIMEOUT))?;
    let mut buf = [0u8; HEAD_LIMIT];
    let mut filled = 0;
    let mut requests = Requests::default();
    let mut out = Vec::new();
    let mut deadline = Instant::now() + HEAD_TIMEOUT;
    loop {
        // Answer every request received so far, in order, in one write.
        let answered = requests.answer(&buf[..filled], &mut out);
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
            deadline = Instant::now() + HEAD_TIMEOUT;
        }
        if answered.close {
            if filled > answered.used {
                close_gently(stream); // as in `serve`
            }
            return Ok(());
        }
        // Keep the unanswered rest (part of the next head) at the front.
        buf.copy_within(answered.used..filled, 0);
        filled -= answered.used;

        // A deadline for the whole request, as for the head in `serve`: an
        // idle client, or one that trickles bytes, is closed when it passes.
        match read_before(&mut stream, &mut buf[filled..], deadline) {
            Ok(0) => return Ok(()), // the client closed the connection
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e), // a reset, or the deadline
        }
    }
}
// ANCHOR_END: serve_keep_alive

// ANCHOR: close_gently
/// How long a server that has said it is done waits for a client that is
/// still sending to finish and close too, and how many of its bytes it
/// reads and throws away meanwhile. Every listing closes this way.
pub const LINGER: Duration = Duration::from_secs(1);
pub const LINGER_BYTES: usize = 64 * 1024;

/// Closes a connection whose client may still be sending. Closing a socket
/// with unread bytes in its receive buffer makes the kernel send a reset
/// instead of an orderly end, and a reset can destroy the response on its
/// way to the client. So: say we are done (FIN), then read and discard what
/// still comes, until the client closes too, for [`LINGER`] and
/// [`LINGER_BYTES`] at most.
fn close_gently(mut stream: TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    // A deadline for the whole drain, not for each read: a client that
    // trickles bytes must not keep us here.
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    let mut left = LINGER_BYTES;
    while left > 0 {
        match read_before(&mut stream, &mut sink, deadline) {
            Ok(0) => return,
            Ok(n) => left = left.saturating_sub(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
// ANCHOR_END: close_gently

#[cfg(test)]
mod tests {
    use super::*;

    fn request(buf: &[u8]) -> Request {
        match parse_head(buf) {
            Head::Complete(request) => request,
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn complete(buf: &[u8]) -> (usize, bool) {
        let request = request(buf);
        (request.len, request.keep_alive)
    }

    #[track_caller]
    fn refused(buf: &[u8], response: &[u8]) {
        match parse_head(buf) {
            Head::Refused(got) if got == response => {}
            other => panic!(
                "{other:?} for {:?}, not {:?}",
                String::from_utf8_lossy(buf),
                String::from_utf8_lossy(response)
            ),
        }
    }

    #[test]
    fn the_number_of_workers() {
        assert_eq!(workers(Some("3".into())).unwrap(), 3);
        assert!(workers(None).unwrap() >= 1);
        for bad in ["0", "-1", "two", "", "3 "] {
            assert!(workers(Some(bad.into())).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn responses_are_exact() {
        assert_eq!(RESPONSE.len(), 69);
        assert!(RESPONSE.ends_with(b"\r\n\r\nHello world"));
        assert!(RESPONSE_KEEP_ALIVE.ends_with(b"\r\n\r\nHello world"));
        for refusal in [TOO_LARGE, BAD_REQUEST, CONTENT_TOO_LARGE, LENGTH_REQUIRED] {
            assert!(
                refusal
                    .ends_with(b"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            );
        }
    }

    #[test]
    fn targets() {
        let ms = Duration::from_millis;
        assert_eq!(Work::from_target(b"/"), Some(Work::Nothing));
        assert_eq!(Work::from_target(b"/cpu"), Some(Work::Nothing));
        assert_eq!(Work::from_target(b"/index.html"), Some(Work::Nothing));
        assert_eq!(
            Work::from_target(b"/cpu/250"),
            Some(Work::Cpu(Duration::from_micros(250)))
        );
        assert_eq!(
            Work::from_target(b"/cpu/1000000"),
            Some(Work::Cpu(ms(1000)))
        );
        assert_eq!(Work::from_target(b"/sleep/0"), Some(Work::Sleep(ms(0))));
        assert_eq!(
            Work::from_target(b"/sleep/1000"),
            Some(Work::Sleep(ms(1000)))
        );
        for bad in [
            &b"/cpu/"[..],
            b"/cpu/x",
            b"/cpu/1000001",
            b"/cpu/-1",
            b"/cpu/+1",
            b"/cpu/10?x=1",
            b"/sleep/1001",
            b"/sleep/99999999",
            b"/sleep/18446744073709551617",
        ] {
            assert_eq!(
                Work::from_target(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn work_takes_as_long_as_asked() {
        for work in [
            Work::Cpu(Duration::from_millis(20)),
            Work::Sleep(Duration::from_millis(20)),
        ] {
            let start = Instant::now();
            work.run();
            assert!(start.elapsed() >= work.length(), "{work:?}");
        }
    }

    #[test]
    fn work_asked_for() {
        let head = |target: &str| format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
        let work = |target: &str| match parse_head(head(target).as_bytes()) {
            Head::Complete(request) => Some(request.work),
            _ => None,
        };
        assert_eq!(work("/"), Some(Work::Nothing));
        assert_eq!(work("/cpu/5"), Some(Work::Cpu(Duration::from_micros(5))));
        assert_eq!(
            work("/sleep/5"),
            Some(Work::Sleep(Duration::from_millis(5)))
        );
        // Refused as soon as the request line is in, without the rest.
        refused(b"GET /cpu/x HTTP/1.1\r\n", BAD_WORK);
        refused(head("/sleep/99999999").as_bytes(), BAD_WORK);
        let (head, body) = BAD_WORK.split_at(BAD_WORK.len() - 47);
        assert!(head.ends_with(b"Content-Length: 47\r\n\r\n"));
        assert!(body.starts_with(b"/cpu/N") && body.ends_with(b"1000 ms"));
    }

    #[test]
    fn complete_heads() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(complete(req), (req.len(), true));
        assert_eq!(complete(b"GET / HTTP/1.0\r\n\r\n"), (18, false));
        let ab = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: x\r\n\r\n";
        assert!(complete(ab).1);
        // A second, pipelined request does not change the first one's length.
        let two =
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(complete(two), (27, true));
        // Values may have spaces around them, and bytes above 127.
        let spaced =
            b"GET /a?b=c HTTP/1.1\r\nHost:\t[::1]:80 \r\nX-Name: caf\xc3\xa9\r\n\r\n";
        assert!(complete(spaced).1);
        // An empty Host is allowed: a target with no authority.
        assert!(complete(b"OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n").1);
    }

    #[test]
    fn close_wins() {
        for close in [
            &b"GET / HTTP/1.1\r\nHost: x\r\nConnection: foo, Close\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close, keep-alive\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive,close\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n",
        ] {
            assert!(!complete(close).1, "{:?}", String::from_utf8_lossy(close));
        }
    }

    #[test]
    fn host_is_required_once() {
        refused(b"GET / HTTP/1.1\r\n\r\n", BAD_REQUEST);
        refused(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", BAD_REQUEST);
        refused(b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", BAD_REQUEST);
        refused(b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BAD_REQUEST);
        refused(b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", BAD_REQUEST);
        // HTTP/1.0 did not have it.
        assert!(!complete(b"GET / HTTP/1.0\r\n\r\n").1);
    }

    #[test]
    fn bodies_with_a_length() {
        let post = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        let r = request(post);
        assert_eq!(
            (r.len, r.body, r.expects_continue),
            (post.len() - 5, 5, false)
        );
        assert_eq!(request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").body, 0);
        let zero = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 000\r\n\r\n";
        assert_eq!(request(zero).body, 0);
        let limit = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {BODY_LIMIT}\r\n\r\n"
        );
        assert_eq!(request(limit.as_bytes()).body, BODY_LIMIT);
        let over = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            BODY_LIMIT + 1
        );
        refused(over.as_bytes(), CONTENT_TOO_LARGE);
        let huge = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n";
        refused(huge, CONTENT_TOO_LARGE);
    }

    #[test]
    fn lengths_that_cannot_be_trusted() {
        for length in [
            &b"Content-Length: 5\r\nContent-Length: 5"[..],
            b"Content-Length: 5\r\nContent-Length: 6",
            b"Content-Length: 5, 5",
            b"Content-Length: -5",
            b"Content-Length: +5",
            b"Content-Length: 0x5",
            b"Content-Length: 5 5",
            b"Content-Length: ",
            b"Content-Length : 5",
            b"Content-Length: 5\r\nTransfer-Encoding: chunked",
            b"Transfer-Encoding: chunked\r\nContent-Length: 5",
        ] {
            let head =
                [b"POST / HTTP/1.1\r\nHost: x\r\n", length, b"\r\n\r\n"].concat();
            refused(&head, BAD_REQUEST);
        }
        for coding in [&b"chunked"[..], b"gzip, chunked", b"identity"] {
            let head = [
                b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ",
                coding,
                b"\r\n\r\n",
            ];
            refused(&head.concat(), LENGTH_REQUIRED);
        }
    }

    #[test]
    fn expect_continue() {
        let ask =
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n";
        assert!(request(ask).expects_continue);
        // Not without a body, and not from HTTP/1.0.
        let empty = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n";
        assert!(!request(empty).expects_continue);
        let old =
            b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        assert!(!request(old).expects_continue);
    }

    #[test]
    fn partial_heads() {
        for part in [
            &b""[..],
            b"GET",
            b"GET / HTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r",
            b"POST / HTTP/1.1\r\nContent-Length: 5",
        ] {
            assert_eq!(parse_head(part), Head::Partial);
        }
    }

    #[test]
    fn bad_heads() {
        for bad in [
            &b"\r\n\r\n"[..],
            b"GET /\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
            b"GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ] {
            refused(bad, BAD_REQUEST);
        }
    }

    /// A bare "\n" ends no line: it is refused as soon as it arrives,
    /// wherever it is, not after a wait for a blank line.
    #[test]
    fn bare_line_feeds() {
        for bad in [
            &b"GET / HTTP/1.1\n"[..],
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"GET / HTTP/1.1\r\nHost: x\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\n",
            b"\n",
        ] {
            refused(bad, BAD_REQUEST);
        }
    }

    /// Lines are checked as they arrive: a bad one is refused before the
    /// head ends.
    #[test]
    fn bad_lines_before_the_end() {
        refused(b"GET / HTTP/1.1\r\nBad Name: x\r\n", BAD_REQUEST);
        refused(b"GET / HTTP/1.1\r\nContent-Length: x\r\nHo", BAD_REQUEST);
        refused(b"GET / HTTP/3\r\nHo", BAD_REQUEST);
    }

    #[test]
    fn starts_that_cannot_become_requests() {
        for bad in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            b"\r\n",
            b"\x00",
            b" GET / HTTP/1.1\r\n",
            b"GET\r\nHost: x\r\n",
            b"G(T / HTTP/1.1",
        ] {
            refused(bad, BAD_REQUEST);
        }
        // Junk the size of the limit is junk first: 400, not 431.
        refused(&[0xff; HEAD_LIMIT], BAD_REQUEST);
        // What may still be a request is waited for.
        for part in [&b"G"[..], b"PRI", b"GET /\x00junk"] {
            assert_eq!(parse_head(part), Head::Partial);
        }
    }

    #[test]
    fn heads_over_the_limit() {
        let mut long = b"GET / HTTP/1.1\r\nHost: x\r\nX: ".to_vec();
        long.resize(HEAD_LIMIT, b'a');
        refused(&long, TOO_LARGE);
        long.extend_from_slice(b"\r\n\r\n");
        refused(&long, TOO_LARGE);
        long.truncate(HEAD_LIMIT - 4);
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(complete(&long).0, HEAD_LIMIT);
    }

    /// Feeds `parts` to one `Requests`, as reads would bring them, keeping
    /// what is not used yet; returns the responses and whether the last one
    /// ends the connection.
    fn answer_all(parts: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut requests = Requests::default();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for part in parts {
            buf.extend_from_slice(part);
            let answered = requests.answer(&buf, &mut out);
            if answered.close {
                return (out, true);
            }
            buf.drain(..answered.used);
        }
        (out, false)
    }

    #[test]
    fn answering_pipelined_heads() {
        let mut out = Vec::new();
        let two = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\n\r\nGET /";
        let answered = Requests::default().answer(two, &mut out);
        assert_eq!(
            answered,
            Answered {
                used: 45,
                close: true
            }
        );
        assert_eq!(out, [RESPONSE_KEEP_ALIVE, RESPONSE].concat());

        out.clear();
        let partial = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HT";
        assert_eq!(
            Requests::default().answer(partial, &mut out),
            Answered {
                used: 27,
                close: false
            }
        );
        assert_eq!(out, RESPONSE_KEEP_ALIVE);

        // A refused head is answered, and left in place.
        out.clear();
        let bad = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nNOT HTTP\r\n\r\n";
        assert_eq!(
            Requests::default().answer(bad, &mut out),
            Answered {
                used: 27,
                close: true
            }
        );
        assert_eq!(out, [RESPONSE_KEEP_ALIVE, BAD_REQUEST].concat());
    }

    /// Handing work off: `answer` stops before a request that asks for
    /// work, and goes on, in order, once it is done.
    #[test]
    fn work_handed_off() {
        let pipelined = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\
GET /sleep/5 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\n\r\n";
        let mut requests = Requests::handing_off();
        let mut out = Vec::new();
        let answered = requests.answer(pipelined, &mut out);
        assert_eq!(
            answered,
            Answered {
                used: 61,
                close: false
            }
        );
        assert_eq!(out, RESPONSE_KEEP_ALIVE);
        let work = Work::Sleep(Duration::from_millis(5));
        assert_eq!(requests.handed_out(), Some(work));
        // Nothing more is answered until the work is done.
        let rest = &pipelined[answered.used..];
        assert_eq!(requests.answer(rest, &mut out).used, 0);
        assert!(!requests.done(&mut out));
        assert_eq!(requests.handed_out(), None);
        assert!(requests.answer(rest, &mut out).close);
        let want = [RESPONSE_KEEP_ALIVE, RESPONSE_KEEP_ALIVE, RESPONSE].concat();
        assert_eq!(out, want);
        // A request without work, or with its body still to come, is not
        // handed out.
        let post = b"POST /cpu/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\na";
        let mut requests = Requests::handing_off();
        assert_eq!(requests.answer(post, &mut out).used, post.len());
        assert_eq!(requests.handed_out(), None);
        requests.answer(b"b", &mut out);
        assert!(requests.handed_out().is_some());
    }

    /// A body is not a request, whatever it looks like.
    #[test]
    fn a_body_is_read_not_answered() {
        let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let smuggled = [
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\n",
            &get[..],
            get,
        ]
        .concat();
        let (out, close) = answer_all(&[&smuggled]);
        assert_eq!(out, RESPONSE_KEEP_ALIVE.repeat(2));
        assert!(!close);
        // "hello", then a GET: not a request called "helloGET".
        let hello = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        let (out, _) = answer_all(&[hello, get]);
        assert_eq!(out, RESPONSE_KEEP_ALIVE.repeat(2));
    }

    #[test]
    fn a_body_in_pieces() {
        // Answered only once the last byte of the body is in, however the
        // reads cut it.
        let head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n";
        let body = vec![b'z'; 10_000];
        let mut requests = Requests::default();
        let mut out = Vec::new();
        let answered =
            requests.answer(&[&head[..], &body[..4000]].concat(), &mut out);
        assert_eq!(answered.used, head.len() + 4000);
        assert!(out.is_empty());
        assert_eq!(requests.answer(&body[4000..9999], &mut out).used, 5999);
        assert!(out.is_empty());
        let last = [
            &body[9999..],
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ];
        let answered = requests.answer(&last.concat(), &mut out);
        assert!(answered.close);
        assert_eq!(out, [RESPONSE_KEEP_ALIVE, RESPONSE].concat());
    }

    #[test]
    fn continue_before_the_body() {
        let head =
            b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        let mut requests = Requests::default();
        let mut out = Vec::new();
        let answered = requests.answer(head, &mut out);
        assert_eq!(answered.used, head.len());
        assert_eq!(out, CONTINUE);
        out.clear();
        requests.answer(b"abc", &mut out);
        assert_eq!(out, RESPONSE_KEEP_ALIVE);
    }

    #[test]
    fn refused_bodies_end_the_connection() {
        let chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(answer_all(&[chunked]), (LENGTH_REQUIRED.to_vec(), true));
        let big = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 9999999\r\n\r\n";
        assert_eq!(answer_all(&[big]), (CONTENT_TOO_LARGE.to_vec(), true));
    }

    /// Runs `serve_keep_alive` on one connection, sends `parts`, and
    /// returns everything the server wrote until it closed.
    fn keep_alive_exchange(parts: &[&[u8]]) -> Vec<u8> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client.set_read_timeout(Some(HEAD_TIMEOUT)).unwrap();
        let (server, _) = listener.accept().unwrap();
        let serving = thread::spawn(move || serve_keep_alive(server));
        for part in parts {
            client.write_all(part).unwrap();
            thread::sleep(Duration::from_millis(20));
        }
        client.shutdown(Shutdown::Write).unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        serving.join().unwrap().unwrap();
        got
    }

    #[test]
    fn keep_alive_answers_in_order_until_close() {
        let got = keep_alive_exchange(&[
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HT",
            b"TP/1.1\r\nHost: x\r\n\r\nPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nGE",
            b"T /GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        ]);
        let want = [
            RESPONSE_KEEP_ALIVE,
            RESPONSE_KEEP_ALIVE,
            RESPONSE_KEEP_ALIVE,
            RESPONSE_KEEP_ALIVE,
            RESPONSE,
        ]
        .concat();
        assert!(got == want, "{}", String::from_utf8_lossy(&got));
    }

    #[test]
    fn keep_alive_refuses_a_bad_head_and_closes() {
        let got = keep_alive_exchange(&[
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nnonsense\r\n\r\n",
        ]);
        assert_eq!(got, [RESPONSE_KEEP_ALIVE, BAD_REQUEST].concat());
    }
}
