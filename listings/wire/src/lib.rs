//! What every server in the book shares: the bytes it answers with, how it
//! recognises a complete request head, and how a blocking server serves one
//! connection. Each model differs only in how it gets connections to this
//! code; the code itself stays the same.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

// ANCHOR: responses
/// The answer to every request, for a client that will not reuse its
/// connection: the server closes the connection right after it.
pub const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\nHello world";

/// The same answer for a client that keeps its connection open.
pub const RESPONSE_KEEP_ALIVE: &[u8] =
    b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 11\r\n\r\nHello world";

/// A request head longer than [`HEAD_LIMIT`] gets this, and a close.
pub const TOO_LARGE: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";

/// A head that is not HTTP/1.x gets this, and a close.
pub const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
// ANCHOR_END: responses

// ANCHOR: limits
/// The longest request head a server reads, blank line included.
pub const HEAD_LIMIT: usize = 8 * 1024;

/// How long a blocking server waits for the rest of a request head (or for
/// the client to take the response) before it gives up on the connection.
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
            format!("the number of workers must be a whole number above 0, not {text:?}"),
        )),
    }
}
// ANCHOR_END: workers

// ANCHOR: parse
/// What the bytes received so far amount to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Head {
    /// No blank line yet, and still under the limit: read more.
    Partial,
    /// A complete, well-formed head of `len` bytes (blank line included).
    Complete { len: usize, keep_alive: bool },
    /// No blank line within [`HEAD_LIMIT`] bytes.
    TooLarge,
    /// A head that is not an HTTP/1.0 or HTTP/1.1 request, or the start of
    /// one that cannot become one (its first word is not a method).
    Bad,
}

/// Looks at the start of `buf` for one request head.
pub fn parse_head(buf: &[u8]) -> Head {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if !may_be_request(buf) {
            Head::Bad
        } else if buf.len() >= HEAD_LIMIT {
            Head::TooLarge
        } else {
            Head::Partial
        };
    };
    let len = end + 4;
    if len > HEAD_LIMIT {
        return Head::TooLarge;
    }
    // Hand over every line with its "\r\n" but the last "\n".
    match check_head(&buf[..end + 1]) {
        Some(keep_alive) => Head::Complete { len, keep_alive },
        None => Head::Bad,
    }
}
// ANCHOR_END: parse

// ANCHOR: answer
/// What [`answer`] made of the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// How many bytes, from the start, were answered. What follows is the
    /// start of the next head, or a head that was refused.
    pub used: usize,
    /// The last response ends the connection: the client asked for that,
    /// or sent a head we refuse. A refused head is not counted in `used`,
    /// so that bytes left over say the client had more to say.
    pub close: bool,
}

/// Appends to `out` a response for every complete head at the start of
/// `buf`, in the order they came: a client may send several requests
/// before it reads any answer (pipelining). Stops at a partial head, and
/// after the first response that ends the connection.
pub fn answer(buf: &[u8], out: &mut Vec<u8>) -> Answered {
    let mut used = 0;
    loop {
        let (response, close) = match parse_head(&buf[used..]) {
            Head::Partial => return Answered { used, close: false },
            Head::Complete { len, keep_alive } => {
                used += len;
                if keep_alive {
                    (RESPONSE_KEEP_ALIVE, false)
                } else {
                    (RESPONSE, true)
                }
            }
            Head::TooLarge => (TOO_LARGE, true),
            Head::Bad => (BAD_REQUEST, true),
        };
        out.extend_from_slice(response);
        if close {
            return Answered { used, close };
        }
    }
}
// ANCHOR_END: answer

/// Checks the request line and header lines, and works out whether the
/// client asked to keep the connection open. `None` means malformed.
/// Every line of `head` ends in "\r" (its "\n" taken by the split).
fn check_head(head: &[u8]) -> Option<bool> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r"));
    let request_line = lines.next()??;

    let mut parts = request_line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_token(method) || target.is_empty() {
        return None;
    }
    if target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return None;
    }
    // HTTP/1.1 keeps connections open unless told otherwise; 1.0 closes them.
    let mut keep_alive = match version {
        b"HTTP/1.1" => true,
        b"HTTP/1.0" => false,
        _ => return None,
    };

    for line in lines {
        let line = line?;
        let colon = line.iter().position(|&b| b == b':')?;
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if !is_token(name) || value.iter().any(|&b| b < b' ' && b != b'\t') {
            return None;
        }
        if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',') {
                let option = option.trim_ascii();
                if option.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if option.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    Some(keep_alive)
}

/// An HTTP token: the characters a method or a header name may use.
fn is_token(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.iter().all(|&b| is_token_char(b))
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

// ANCHOR: may_be_request
/// Whether the start of a head, with no blank line yet, may still become a
/// request: whether it starts with a method, or with what may be the start
/// of one. A TLS handshake, binary junk or an empty line fails on its first
/// byte, and gets its 400 at once instead of holding the connection open
/// until the head timeout, waiting for a blank line that will never come.
fn may_be_request(buf: &[u8]) -> bool {
    match buf.iter().position(|&b| b == b' ') {
        Some(space) => is_token(&buf[..space]),
        None => buf.iter().all(|&b| is_token_char(b)),
    }
}
// ANCHOR_END: may_be_request

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
/// write the response, close. Errors concern this client only; the caller
/// drops them and moves on.
pub fn serve(mut stream: TcpStream) -> io::Result<()> {
    // A client that stops sending, or sends too slowly, costs us at most
    // this long: the whole head must be in by then (see `read_before`).
    let deadline = Instant::now() + HEAD_TIMEOUT;
    // One that stops reading, this long per write.
    stream.set_write_timeout(Some(HEAD_TIMEOUT))?;

    let mut buf = [0u8; HEAD_LIMIT];
    let mut filled = 0;
    let (response, used) = loop {
        let n = match read_before(&mut stream, &mut buf[filled..], deadline) {
            Ok(0) => return Ok(()), // the client left before finishing its head
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e), // a reset, or the deadline
        };
        filled += n;
        match parse_head(&buf[..filled]) {
            Head::Partial => continue, // a short read: the head goes on
            Head::Complete { len, .. } => break (RESPONSE, len),
            Head::TooLarge => break (TOO_LARGE, filled),
            Head::Bad => break (BAD_REQUEST, filled),
        }
    };
    // write_all resumes after short writes and retries on EINTR.
    stream.write_all(response)?;
    if response != RESPONSE || filled > used {
        // The client may still be sending: a rejected head, or bytes after
        // the head that we will never read.
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
fn read_before(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
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
/// it: every complete head is answered in order, however many arrive in
/// one read (a client may send several before reading any answer, which
/// is called pipelining), with [`RESPONSE_KEEP_ALIVE`] while the client
/// wants the connection kept, and [`RESPONSE`] then a close when it does
/// not. Each head must be complete within [`HEAD_TIMEOUT`] of the
/// connection's start or of the previous response, so an idle connection
/// is closed after that long; until then, it holds the calling thread.
pub fn serve_keep_alive(mut stream: TcpStream) -> io::Result<()> {
    stream.set_write_timeout(Some(HEAD_TIMEOUT))?;
    let mut buf = [0u8; HEAD_LIMIT];
    let mut filled = 0;
    let mut out = Vec::new();
    let mut deadline = Instant::now() + HEAD_TIMEOUT;
    loop {
        // Answer every complete head received so far, in order, in one write.
        let answered = answer(&buf[..filled], &mut out);
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

        // A deadline for the whole head, as in `serve`: an idle client,
        // or one that trickles bytes, is closed when it passes.
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

    fn complete(buf: &[u8]) -> (usize, bool) {
        match parse_head(buf) {
            Head::Complete { len, keep_alive } => (len, keep_alive),
            other => panic!("{other:?} for {:?}", String::from_utf8_lossy(buf)),
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
    }

    #[test]
    fn complete_heads() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(complete(req), (req.len(), true));
        assert_eq!(complete(b"GET / HTTP/1.0\r\n\r\n"), (18, false));
        let ab = b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: x\r\n\r\n";
        assert!(complete(ab).1);
        let close = b"GET / HTTP/1.1\r\nConnection: foo, Close\r\n\r\n";
        assert!(!complete(close).1);
        // A second, pipelined request does not change the first one's length.
        let two = b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        assert_eq!(complete(two), (18, true));
    }

    #[test]
    fn answering_pipelined_heads() {
        let mut out = Vec::new();
        let two = b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\n\r\nGET /";
        let answered = answer(two, &mut out);
        assert_eq!(
            answered,
            Answered {
                used: 36,
                close: true
            }
        );
        assert_eq!(out, [RESPONSE_KEEP_ALIVE, RESPONSE].concat());

        out.clear();
        let partial = b"GET / HTTP/1.1\r\n\r\nGET / HT";
        assert_eq!(
            answer(partial, &mut out),
            Answered {
                used: 18,
                close: false
            }
        );
        assert_eq!(out, RESPONSE_KEEP_ALIVE);

        // A refused head is answered, and left in place.
        out.clear();
        let bad = b"GET / HTTP/1.1\r\n\r\nNOT HTTP\r\n\r\n";
        assert_eq!(
            answer(bad, &mut out),
            Answered {
                used: 18,
                close: true
            }
        );
        assert_eq!(out, [RESPONSE_KEEP_ALIVE, BAD_REQUEST].concat());
    }

    #[test]
    fn partial_heads() {
        for part in [
            &b""[..],
            b"GET",
            b"GET / HTTP/1.1\r\n",
            b"GET / HTTP/1.1\r\n\r",
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
            b"GET / HTTP/1.1\nHost: x\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        ] {
            assert_eq!(
                parse_head(bad),
                Head::Bad,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
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
            assert_eq!(
                parse_head(bad),
                Head::Bad,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Junk the size of the limit is junk first: 400, not 431.
        assert_eq!(parse_head(&[0xff; HEAD_LIMIT]), Head::Bad);
        // What may still be a request is waited for.
        for part in [&b"G"[..], b"PRI", b"GET /\x00junk"] {
            assert_eq!(parse_head(part), Head::Partial);
        }
    }

    #[test]
    fn heads_over_the_limit() {
        let mut long = b"GET / HTTP/1.1\r\nX: ".to_vec();
        long.resize(HEAD_LIMIT, b'a');
        assert_eq!(parse_head(&long), Head::TooLarge);
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_head(&long), Head::TooLarge);
        long.truncate(HEAD_LIMIT - 4);
        long.extend_from_slice(b"\r\n\r\n");
        assert_eq!(complete(&long).0, HEAD_LIMIT);
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
            b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HT",
            b"TP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        ]);
        let want = [
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
        let got = keep_alive_exchange(&[b"GET / HTTP/1.1\r\n\r\nnonsense\r\n\r\n"]);
        assert_eq!(got, [RESPONSE_KEEP_ALIVE, BAD_REQUEST].concat());
    }
}
