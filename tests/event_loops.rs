//! What an event loop buys: one thread (or one per core) serves every
//! connection, so idle or slow clients cost a little memory each and hold
//! up nobody. And the select server's limit: a connection whose descriptor
//! does not fit in an `fd_set` is closed, and the server goes on.
//!
//! Each check is a test that puts every event-loop listing of the registry
//! through it, started with the arguments the registry gives tests, and
//! expecting the threads the registry says it then has.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use support::{
    GET_CLOSE, Listing, Model, Server, WAIT, assert_bytes, connect, exchange, read_to_close, start,
    start_with,
};

/// How many listings a check runs at once.
const BATCH: usize = 4;

/// Opens `n` connections, pausing after every few: the listening socket's
/// queue holds 128, and a connection that finds it full waits a whole
/// second for its SYN to be sent again.
fn open_many(server: &Server, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|i| {
            if i % 64 == 63 {
                thread::sleep(Duration::from_millis(10));
            }
            connect(server.addr())
        })
        .collect()
}

/// One plain request, answered exactly.
#[track_caller]
fn served(server: &Server) {
    let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
    assert_bytes(&got, support::RESPONSE);
}

fn many_idle_connections_stall_nobody(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let idle = open_many(&server, 500);
    // Served while they all wait, and by no more threads than it started with.
    served(&server);
    if let Some(threads) = l.threads {
        assert_eq!(server.threads().unwrap(), threads);
    }
    // And every one of them is still open, and served when it speaks.
    for mut stream in idle.into_iter().step_by(50) {
        stream.write_all(GET_CLOSE).expect("write");
        let got = read_to_close(&mut stream).expect("read");
        assert_bytes(&got, support::RESPONSE);
    }
    Ok(())
}

fn a_trickling_client_stalls_nobody(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let mut slow = connect(server.addr());
    // One byte a second; meanwhile, other clients are served.
    let (first, rest) = GET_CLOSE.split_at(2);
    for (i, byte) in first.iter().enumerate() {
        if i > 0 {
            thread::sleep(Duration::from_secs(1));
        }
        slow.write_all(&[*byte]).expect("write");
        served(&server);
    }
    slow.write_all(rest).expect("write");
    let got = read_to_close(&mut slow).expect("read");
    assert_bytes(&got, support::RESPONSE);
    Ok(())
}

/// More connections than an `fd_set` has bits: those the server cannot
/// watch are closed; it never panics, and serves again once they are gone.
#[test]
fn select_sheds_descriptors_past_fd_setsize() {
    let server = start_with("select", &[]);
    let clients = open_many(&server, 1100);
    // The last ones got descriptors past 1023: closed, unanswered.
    let mut last = clients.last().unwrap();
    let mut byte = [0u8; 1];
    match last.read(&mut byte) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("the connection past FD_SETSIZE was kept: {other:?}"),
    }
    drop(clients);
    // Once they are gone, descriptors are free again; the server never
    // stopped. (Closing 1100 connections takes the loop a moment.)
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut stream = connect(server.addr());
        stream.write_all(GET_CLOSE).expect("write");
        match read_to_close(&mut stream) {
            Ok(got) if got == support::RESPONSE => break,
            _ if std::time::Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            other => panic!("not served after the flood: {other:?}"),
        }
    }
}

fn event_loop(l: &Listing) -> bool {
    l.model == Model::EventLoop
}

#[test]
fn many_idle_connections_stall_nobody_every_loop() {
    support::for_every_listing(BATCH, event_loop, many_idle_connections_stall_nobody);
}

#[test]
fn a_trickling_client_stalls_nobody_every_loop() {
    support::for_every_listing(usize::MAX, event_loop, a_trickling_client_stalls_nobody);
}
