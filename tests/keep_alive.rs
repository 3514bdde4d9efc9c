//! Persistent connections, for every listing that keeps them (`keep_alive`
//! in the registry): many requests on one connection, pipelined
//! requests, HTTP/1.0's `Connection: keep-alive`, `Connection: close`
//! honoured, and an idle connection closed by the server.
//!
//! Each check is a test that puts every keep-alive listing of the registry
//! through it, a few at a time; the idle test waits out
//! `wire::HEAD_TIMEOUT`, so it takes them all at once.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{GET_CLOSE, Listing, WAIT, assert_bytes, connect, read_to_close, start};

/// How many listings a check runs at once.
const BATCH: usize = 4;

/// HTTP/1.1 keeps the connection unless told otherwise.
const GET_KEEP: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

/// HTTP/1.0 keeps it only when asked, as `ab -k` asks.
const GET_10_KEEP: &[u8] =
    b"GET / HTTP/1.0\r\nHost: test\r\nConnection: Keep-Alive\r\nUser-Agent: ApacheBench/2.3\r\n\r\n";

/// Reads exactly one response of `want`'s length, and checks it.
#[track_caller]
fn expect_response(stream: &mut TcpStream, want: &[u8]) {
    let mut got = vec![0; want.len()];
    stream.read_exact(&mut got).expect("read a response");
    assert_bytes(&got, want);
}

fn many_requests_on_one_connection(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let mut stream = connect(server.addr());
    for _ in 0..200 {
        stream.write_all(GET_KEEP).expect("write");
        expect_response(&mut stream, support::RESPONSE_KEEP_ALIVE);
    }
    stream.write_all(GET_CLOSE).expect("write");
    let got = read_to_close(&mut stream).expect("read to the close");
    assert_bytes(&got, support::RESPONSE);
    Ok(())
}

fn pipelined_requests_are_answered_in_order(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let mut stream = connect(server.addr());
    // Fifty heads and a closing one, in one write, and one more after the
    // close that must not be answered; then the answers. (The server must
    // close without a reset for the bytes it never read, or the answers
    // could be lost on their way.)
    let mut requests = GET_KEEP.repeat(50);
    requests.extend_from_slice(GET_10_KEEP);
    requests.extend_from_slice(GET_CLOSE);
    requests.extend_from_slice(GET_KEEP);
    stream.write_all(&requests).expect("write");
    let got = read_to_close(&mut stream).expect("read to the close");
    let mut want = support::RESPONSE_KEEP_ALIVE.repeat(51);
    want.extend_from_slice(support::RESPONSE);
    assert_bytes(&got, &want);
    Ok(())
}

fn http_1_0_keep_alive(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let mut stream = connect(server.addr());
    for _ in 0..3 {
        stream.write_all(GET_10_KEEP).expect("write");
        expect_response(&mut stream, support::RESPONSE_KEEP_ALIVE);
    }
    // Plain HTTP/1.0 means close.
    stream.write_all(support::GET_AB).expect("write");
    let got = read_to_close(&mut stream).expect("read to the close");
    assert_bytes(&got, support::RESPONSE);
    Ok(())
}

fn close_is_honoured(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let mut stream = connect(server.addr());
    stream.write_all(GET_KEEP).expect("write");
    expect_response(&mut stream, support::RESPONSE_KEEP_ALIVE);
    stream.write_all(GET_CLOSE).expect("write");
    expect_response(&mut stream, support::RESPONSE);
    // Then the end of the stream, not another byte.
    let mut byte = [0u8; 1];
    assert_eq!(stream.read(&mut byte).expect("read the close"), 0);
    Ok(())
}

/// One request, then silence: the server closes the connection once
/// `wire::HEAD_TIMEOUT` has passed since the response, not before.
fn idle_connection_is_closed(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let mut stream = connect(server.addr());
    stream.write_all(GET_KEEP).expect("write");
    expect_response(&mut stream, support::RESPONSE_KEEP_ALIVE);
    let answered = Instant::now();
    stream
        .set_read_timeout(Some(wire::HEAD_TIMEOUT + WAIT))
        .unwrap();
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => {}
        Ok(_) => return Err("a byte nobody asked for".into()),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => return Err(format!("the idle connection was not closed: {e}")),
    }
    let idle = answered.elapsed();
    assert!(
        idle >= wire::HEAD_TIMEOUT - Duration::from_millis(200),
        "closed an idle connection after {idle:?}"
    );
    Ok(())
}

fn keeps_alive(l: &Listing) -> bool {
    l.keep_alive
}

#[test]
fn many_requests_on_one_connection_every_listing() {
    support::for_every_listing(BATCH, keeps_alive, many_requests_on_one_connection);
}

#[test]
fn pipelined_requests_are_answered_in_order_every_listing() {
    support::for_every_listing(BATCH, keeps_alive, pipelined_requests_are_answered_in_order);
}

#[test]
fn http_1_0_keep_alive_every_listing() {
    support::for_every_listing(BATCH, keeps_alive, http_1_0_keep_alive);
}

#[test]
fn close_is_honoured_every_listing() {
    support::for_every_listing(BATCH, keeps_alive, close_is_honoured);
}

#[test]
fn idle_connections_are_closed() {
    support::for_every_listing(usize::MAX, keeps_alive, idle_connection_is_closed);
}
