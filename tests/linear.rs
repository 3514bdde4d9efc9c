//! What the linear server cannot do, shown: one client that connects and
//! says nothing holds up everyone behind it, until it leaves or until
//! `wire::HEAD_TIMEOUT` gives up on it. And what it must still do: answer
//! bad input with a bounded response and keep serving.

use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use support::{GET_CLOSE, WAIT, assert_bytes, connect, exchange, read_to_close, start};

/// A client that connected and never sent a byte stalls the next client:
/// its request gets no answer while the first one stays.
#[test]
fn silent_client_stalls_everyone() {
    let server = start("linear");
    let silent = connect(server.addr());

    let mut next = connect(server.addr());
    next.write_all(GET_CLOSE).unwrap();
    // Well within HEAD_TIMEOUT: the server is still waiting on `silent`.
    next.set_read_timeout(Some(Duration::from_millis(1000)))
        .unwrap();
    let mut byte = [0u8; 1];
    let err = next.read(&mut byte).expect_err("answered while stalled");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );

    // The moment the silent client leaves, the next one is served.
    drop(silent);
    next.set_read_timeout(Some(WAIT)).unwrap();
    let got = read_to_close(&mut next).unwrap();
    assert_bytes(&got, support::RESPONSE);
}

/// The stall lasts the head timeout, and no longer: the server waits
/// `wire::HEAD_TIMEOUT` for the silent client it accepted first, serving
/// nobody meanwhile, then gives up on it and serves the next one.
#[test]
fn the_stall_ends_at_the_head_timeout() {
    let server = start("linear");
    let _silent = connect(server.addr());
    let start = Instant::now();
    let mut next = connect(server.addr());
    next.write_all(GET_CLOSE).unwrap();
    next.set_read_timeout(Some(wire::HEAD_TIMEOUT + WAIT))
        .unwrap();
    let got = read_to_close(&mut next).unwrap();
    assert_bytes(&got, support::RESPONSE);
    let waited = start.elapsed();
    // The silent client's deadline started when it was accepted, a moment
    // before `start`.
    assert!(
        waited >= wire::HEAD_TIMEOUT - Duration::from_millis(200),
        "served after {waited:?}: the silent client did not hold the server \
         for the head timeout ({:?})",
        wire::HEAD_TIMEOUT
    );
    assert!(
        waited < wire::HEAD_TIMEOUT + WAIT,
        "waited {waited:?}, more than the head timeout allows"
    );
}

#[test]
fn oversized_head_gets_431() {
    let server = start("linear");
    // No blank line within the limit: the server stops reading and answers.
    let mut huge = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
    huge.resize(wire::HEAD_LIMIT + 100, b'a');
    let got = exchange(server.addr(), &[&huge], Duration::ZERO);
    assert_bytes(&got, support::TOO_LARGE);
    // With the blank line, but still too long.
    huge.extend_from_slice(b"\r\n\r\n");
    let got = exchange(server.addr(), &[&huge], Duration::ZERO);
    assert_bytes(&got, support::TOO_LARGE);
    // And the server goes on serving.
    let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
    assert_bytes(&got, support::RESPONSE);
}

#[test]
fn not_http_gets_400() {
    let server = start("linear");
    for junk in [
        &b"\r\n\r\n"[..],
        b"HELLO\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"\x00\x01\x02\xff\r\n\r\n",
    ] {
        let got = exchange(server.addr(), &[junk], Duration::ZERO);
        assert_bytes(&got, support::BAD_REQUEST);
    }
    let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
    assert_bytes(&got, support::RESPONSE);
}

#[test]
fn client_that_leaves_early_is_not_an_error() {
    let server = start("linear");
    for _ in 0..3 {
        let mut half = connect(server.addr());
        half.write_all(b"GET / HTTP/1.1\r\nHost:").unwrap();
        drop(half);
    }
    let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
    assert_bytes(&got, support::RESPONSE);
}
