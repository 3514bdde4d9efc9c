//! Reading and checking one HTTP/1.1 response as its bytes arrive. No I/O
//! here: a worker feeds in whatever each read returned, and this module says
//! whether the response is still going, complete and as expected, or wrong
//! (and how).

use crate::{Expect, Kind};

/// The longest response head accepted, blank line included.
const HEAD_LIMIT: usize = 16 * 1024;

/// What counts as the right answer, worked out once per run from
/// [`Expect`] and the connection mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Want {
    /// Any well-formed 2xx response.
    Any,
    /// One of these exact byte strings, head and body.
    Bytes(Vec<Vec<u8>>),
}

impl Want {
    pub(crate) fn new(expect: &Expect, keep_alive: bool) -> Want {
        match expect {
            Expect::Any => Want::Any,
            // A server that declines keep-alive answers as if asked to close.
            Expect::Book if keep_alive => Want::Bytes(vec![
                wire::RESPONSE_KEEP_ALIVE.to_vec(),
                wire::RESPONSE.to_vec(),
            ]),
            Expect::Book => Want::Bytes(vec![wire::RESPONSE.to_vec()]),
            Expect::Exact(candidates) => Want::Bytes(candidates.clone()),
        }
    }
}

/// What a complete response head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// Bytes in the head, blank line included.
    pub len: usize,
    pub status: u16,
    /// `None` when missing, malformed, contradictory, or overridden by a
    /// Transfer-Encoding: all the same to us, since we frame by length only.
    pub content_length: Option<u64>,
    /// The server will close the connection after this response.
    pub close: bool,
}

impl Head {
    fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A Content-Length that cannot frame the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Unusable;

/// Looks for a complete response head at the start of `buf`.
/// `Ok(None)`: not all there yet. `Err`: not an HTTP/1.x response head.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<Head>, Kind> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > HEAD_LIMIT {
            Err(Kind::Status)
        } else {
            Ok(None)
        };
    };
    if end + 4 > HEAD_LIMIT {
        return Err(Kind::Status);
    }
    // Every line keeps its "\r", which proves it ended in "\r\n".
    let mut lines = buf[..end + 1]
        .split(|&b| b == b'\n')
        .map(|line| line.strip_suffix(b"\r"));
    let status_line = lines.next().flatten().ok_or(Kind::Status)?;
    let (http_10, status) = parse_status_line(status_line).ok_or(Kind::Status)?;

    // Err once a Content-Length was malformed or contradicted.
    let mut content_length = Ok(None);
    let mut transfer_encoding = false;
    let (mut close, mut keep_alive) = (false, false);
    for line in lines {
        let line = line.ok_or(Kind::Status)?;
        let colon = line.iter().position(|&b| b == b':').ok_or(Kind::Status)?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.is_empty() || name.iter().any(|b| b.is_ascii_whitespace()) {
            return Err(Kind::Status);
        }
        // Header names are case-insensitive.
        if name.eq_ignore_ascii_case(b"content-length") {
            // A second Content-Length is fine only if it says the same.
            content_length = match (content_length, decimal(value)) {
                (Ok(None), Some(n)) => Ok(Some(n)),
                (Ok(Some(first)), Some(n)) if n == first => Ok(Some(n)),
                _ => Err(Unusable),
            };
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            transfer_encoding = true;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    Ok(Some(Head {
        len: end + 4,
        status,
        content_length: content_length.ok().flatten().filter(|_| !transfer_encoding),
        // HTTP/1.1 keeps the connection unless told otherwise; 1.0 closes it.
        close: close || (http_10 && !keep_alive),
    }))
}

/// "HTTP/1.1 200 OK" gives (false, 200); the reason phrase is optional.
fn parse_status_line(line: &[u8]) -> Option<(bool, u16)> {
    let (&minor, rest) = line.strip_prefix(b"HTTP/1.")?.split_first()?;
    let (code, reason) = rest.strip_prefix(b" ")?.split_at_checked(3)?;
    if !matches!(minor, b'0' | b'1') || !(reason.is_empty() || reason[0] == b' ') {
        return None;
    }
    let status = decimal(code)?;
    Some((minor == b'0', u16::try_from(status).ok()?))
}

/// Digits only, no sign, no spaces, and no overflow.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let digit = char::from(d).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A response that came complete and as expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Done {
    /// Body bytes.
    pub body: u64,
    /// The server said it will close the connection.
    pub close: bool,
}

/// One response being received. Keeps the head until it is complete, and
/// the body too when it must be compared byte for byte; otherwise the body
/// is only counted, so a huge body costs no memory.
#[derive(Debug, Default)]
pub(crate) struct Response {
    buf: Vec<u8>,
    head: Option<Head>,
    /// Body bytes still to come, once the head is known.
    body_left: u64,
}

impl Response {
    /// Ready for the next response on the same connection.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.head = None;
        self.body_left = 0;
    }

    /// Takes the next bytes read from the connection. `Ok(None)`: the
    /// response goes on. `Ok(Some(_))`: it is complete and as expected.
    /// `Err`: it is wrong, and the connection is of no further use.
    pub(crate) fn feed(&mut self, data: &[u8], want: &Want) -> Result<Option<Done>, Kind> {
        let (head, body) = match self.head {
            Some(head) => (head, data),
            None => {
                let old = self.buf.len();
                self.buf.extend_from_slice(data);
                let Some(head) = parse_head(&self.buf)? else {
                    return Ok(None);
                };
                self.start_body(head, want)?;
                // The part of `data` after the head is the start of the body.
                let body = &data[head.len - old..];
                self.buf.truncate(head.len);
                (head, body)
            }
        };
        let take = body
            .len()
            .min(usize::try_from(self.body_left).unwrap_or(usize::MAX));
        if matches!(want, Want::Bytes(_)) {
            self.buf.extend_from_slice(&body[..take]);
        }
        self.body_left -= take as u64;
        if take < body.len() {
            // Bytes after the end of the body: we sent only one request.
            return Err(Kind::Length);
        }
        if self.body_left > 0 {
            return Ok(None);
        }
        if let Want::Bytes(candidates) = want {
            if !candidates.contains(&self.buf) {
                return Err(if head.success() {
                    Kind::Mismatch
                } else {
                    Kind::Status
                });
            }
        }
        let body = head.content_length.unwrap_or(0);
        Ok(Some(Done {
            body,
            close: head.close,
        }))
    }

    /// Checks a head that has just come complete, before its body.
    fn start_body(&mut self, head: Head, want: &Want) -> Result<(), Kind> {
        // An exact expectation may itself be a non-2xx response; otherwise a
        // non-2xx status is a failure on its own.
        let head_bytes = &self.buf[..head.len];
        let expected_head = match want {
            Want::Any => None,
            Want::Bytes(candidates) => Some(candidates.iter().any(|c| c.starts_with(head_bytes))),
        };
        if !head.success() && expected_head != Some(true) {
            return Err(Kind::Status);
        }
        let length = head.content_length.ok_or(Kind::Length)?;
        if let Want::Bytes(candidates) = want {
            // No candidate starts like this, or none is that long: fail now
            // rather than buffer a body we already know is wrong.
            let total = (head.len as u64).saturating_add(length);
            if expected_head == Some(false) || !candidates.iter().any(|c| c.len() as u64 == total) {
                return Err(Kind::Mismatch);
            }
        }
        self.head = Some(head);
        self.body_left = length;
        Ok(())
    }

    /// Why the response failed if the connection ended here: before the
    /// head was complete is a read failure, within the body a length one.
    pub(crate) fn cut_short(&self) -> Kind {
        if self.head.is_some() {
            Kind::Length
        } else {
            Kind::Read
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book(keep_alive: bool) -> Want {
        Want::new(&Expect::Book, keep_alive)
    }

    /// Feeds `chunks` one after another; the outcome of the last one.
    fn feed_all(want: &Want, chunks: &[&[u8]]) -> Result<Option<Done>, Kind> {
        let mut response = Response::default();
        let (last, rest) = chunks.split_last().unwrap();
        for chunk in rest {
            assert_eq!(response.feed(chunk, want), Ok(None), "{chunk:?}");
        }
        response.feed(last, want)
    }

    const DONE_CLOSE: Result<Option<Done>, Kind> = Ok(Some(Done {
        body: 11,
        close: true,
    }));

    #[test]
    fn book_response_in_one_piece() {
        assert_eq!(feed_all(&book(false), &[wire::RESPONSE]), DONE_CLOSE);
        assert_eq!(feed_all(&Want::Any, &[wire::RESPONSE]), DONE_CLOSE);
        let keep = Ok(Some(Done {
            body: 11,
            close: false,
        }));
        assert_eq!(feed_all(&book(true), &[wire::RESPONSE_KEEP_ALIVE]), keep);
        // A server that declines keep-alive is fine in keep-alive mode...
        assert_eq!(feed_all(&book(true), &[wire::RESPONSE]), DONE_CLOSE);
        // ...but one that keeps the connection when asked to close is not.
        let wrong = feed_all(&book(false), &[wire::RESPONSE_KEEP_ALIVE]);
        assert_eq!(wrong, Err(Kind::Mismatch));
    }

    #[test]
    fn partial_responses_wait_for_the_rest() {
        for want in [book(false), Want::Any] {
            // Every split point, including inside "\r\n\r\n".
            for cut in 1..wire::RESPONSE.len() {
                let (a, b) = wire::RESPONSE.split_at(cut);
                assert_eq!(feed_all(&want, &[a, b]), DONE_CLOSE, "cut at {cut}");
            }
            // One byte at a time.
            let bytes: Vec<&[u8]> = wire::RESPONSE.chunks(1).collect();
            assert_eq!(feed_all(&want, &bytes), DONE_CLOSE);
        }
    }

    #[test]
    fn cut_short_in_the_head_or_in_the_body() {
        let mut response = Response::default();
        assert_eq!(
            response.feed(b"HTTP/1.1 200 OK\r\nContent-", &Want::Any),
            Ok(None)
        );
        assert_eq!(response.cut_short(), Kind::Read);
        let head = b"Length: 11\r\n\r\nHello";
        assert_eq!(response.feed(head, &Want::Any), Ok(None));
        assert_eq!(response.cut_short(), Kind::Length);
    }

    #[test]
    fn wrong_content_length() {
        let long = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nHello world";
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHello world";
        for want in [book(false), Want::Any] {
            // Too long: the body never ends, the server's EOF cuts it short.
            let mut response = Response::default();
            let fed = response.feed(long, &want);
            if want == Want::Any {
                assert_eq!(fed, Ok(None));
                assert_eq!(response.cut_short(), Kind::Length);
            } else {
                // No expected response is that long: known at once.
                assert_eq!(fed, Err(Kind::Mismatch));
            }
            // Too short: a byte left over after the body.
            let fed = feed_all(&want, &[short]);
            assert!(matches!(fed, Err(Kind::Length | Kind::Mismatch)), "{fed:?}");
        }
        assert_eq!(feed_all(&Want::Any, &[short]), Err(Kind::Length));
        let missing = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nHello world";
        assert_eq!(feed_all(&Want::Any, &[missing]), Err(Kind::Length));
        for bad in ["-1", "1 1", "0x0b", "", "99999999999999999999999"] {
            let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            let fed = feed_all(&Want::Any, &[head.as_bytes()]);
            assert_eq!(fed, Err(Kind::Length), "{bad:?}");
        }
        let twice = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(feed_all(&Want::Any, &[twice]), Err(Kind::Length));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(feed_all(&Want::Any, &[chunked]), Err(Kind::Length));
    }

    #[test]
    fn extra_bytes_after_the_response() {
        let mut two = wire::RESPONSE.to_vec();
        two.extend_from_slice(b"x");
        for want in [book(false), book(true), Want::Any] {
            assert_eq!(feed_all(&want, &[&two]), Err(Kind::Length));
            // Also when the extra bytes come in the same read as the end.
            let (a, b) = two.split_at(60);
            assert_eq!(feed_all(&want, &[a, b]), Err(Kind::Length));
        }
    }

    #[test]
    fn non_2xx_is_a_status_failure() {
        for want in [book(false), Want::Any] {
            assert_eq!(feed_all(&want, &[wire::BAD_REQUEST]), Err(Kind::Status));
            let moved = b"HTTP/1.1 301 Moved\r\nContent-Length: 0\r\n\r\n";
            assert_eq!(feed_all(&want, &[moved]), Err(Kind::Status));
        }
        // Unless it is exactly what was asked for.
        let want = Want::new(&Expect::Exact(vec![wire::TOO_LARGE.to_vec()]), false);
        let done = Ok(Some(Done {
            body: 0,
            close: true,
        }));
        assert_eq!(feed_all(&want, &[wire::TOO_LARGE]), done);
        assert_eq!(feed_all(&want, &[wire::BAD_REQUEST]), Err(Kind::Status));
        assert_eq!(feed_all(&want, &[wire::RESPONSE]), Err(Kind::Mismatch));
    }

    #[test]
    fn header_names_and_options_are_case_insensitive() {
        let odd = b"HTTP/1.1 200 OK\r\ncontent-LENGTH: 11\r\nCONNECTION: Keep-Alive, CLOSE\r\n\r\nHello world";
        assert_eq!(feed_all(&Want::Any, &[odd]), DONE_CLOSE);
        // HTTP/1.0 closes unless it says keep-alive.
        let old = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
        let head = parse_head(old).unwrap().unwrap();
        assert!(head.close);
        let old_keep = b"HTTP/1.0 200 OK\r\nconnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        assert!(!parse_head(old_keep).unwrap().unwrap().close);
        assert!(
            !parse_head(b"HTTP/1.1 204\r\nContent-Length: 0\r\n\r\n")
                .unwrap()
                .unwrap()
                .close
        );
    }

    #[test]
    fn the_wrong_bytes_are_a_mismatch() {
        let other =
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 11\r\n\r\nHello World";
        assert_eq!(feed_all(&book(false), &[other]), Err(Kind::Mismatch));
        assert_eq!(feed_all(&Want::Any, &[other]), DONE_CLOSE);
    }

    #[test]
    fn malformed_heads() {
        for bad in [
            &b"HELLO\r\n\r\n"[..],
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 +20 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(feed_all(&Want::Any, &[bad]), Err(Kind::Status), "{bad:?}");
        }
        // A head that never ends is cut off at the limit.
        let mut endless = Response::default();
        let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let mut fed = endless.feed(b"HTTP/1.1 200 OK\r\n", &Want::Any);
        while fed == Ok(None) {
            fed = endless.feed(line, &Want::Any);
        }
        assert_eq!(fed, Err(Kind::Status));
        assert!(endless.buf.len() < HEAD_LIMIT + line.len());
    }

    #[test]
    fn a_huge_body_is_counted_not_kept() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
        let mut response = Response::default();
        assert_eq!(response.feed(head, &Want::Any), Ok(None));
        let chunk = [b'x'; 1000];
        for _ in 0..999 {
            assert_eq!(response.feed(&chunk, &Want::Any), Ok(None));
        }
        let done = response.feed(&chunk, &Want::Any);
        assert_eq!(
            done,
            Ok(Some(Done {
                body: 1_000_000,
                close: false
            }))
        );
        assert_eq!(response.buf.len(), head.len());
    }

    #[test]
    fn cleared_for_the_next_response() {
        let want = book(true);
        let mut response = Response::default();
        for _ in 0..3 {
            let done = response.feed(wire::RESPONSE_KEEP_ALIVE, &want);
            assert!(matches!(done, Ok(Some(_))), "{done:?}");
            response.clear();
        }
    }
}
