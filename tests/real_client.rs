//! A real HTTP client, written by nobody here: `ureq`, against every
//! listing. The book's own clients send exactly the bytes its tests choose;
//! a client library sends what its authors thought right, and reads the
//! answers its own way.
//!
//! Every listing answers its `GET`s. Every listing that keeps connections
//! answers a `POST` with a body and then a `GET` on the same connection,
//! which is what a client of an API does all day. (Before the listings
//! read bodies, the body was taken for the start of the next request, and
//! a stock client's second request failed.) Whether the requests shared a
//! connection is read from the kernel's table of TCP sockets.

use std::collections::HashSet;
use std::fs;

use support::{Listing, Server, WAIT, start};

/// How many listings a check runs at once.
const BATCH: usize = 4;

/// What every listing answers, body only.
const BODY: &str = "Hello world";

/// A client with a pool of connections, as ureq's always has, that takes a
/// status of 400 or more for an answer rather than an error.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(WAIT))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Checks that a response is the book's `200 OK` with its body, and says
/// whether it offered to keep the connection.
fn check(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Result<bool, String> {
    let mut response = response.map_err(|e| format!("the request failed: {e}"))?;
    let status = response.status();
    let keep_alive = response
        .headers()
        .get("connection")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"keep-alive"));
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("reading the body: {e}"))?;
    if status != 200 || body != BODY {
        return Err(format!("answered {status} {body:?}"));
    }
    Ok(keep_alive)
}

/// The connections of the server's port, as the kernel's table of TCP
/// sockets (`/proc/net/tcp`) lists them: the server's end of each, in any
/// state but listening, those in `TIME_WAIT` included, by the address of
/// the client's end. A port may have served an earlier server whose
/// connections linger in `TIME_WAIT`: compare two readings.
fn connections(server: &Server) -> HashSet<String> {
    let port = format!("{:04X}", server.addr().port());
    let table = fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let mut found = HashSet::new();
    for line in table.lines().skip(1) {
        // sl, local address, remote address, state, ...
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, local, remote, state, ..] = fields[..] else {
            continue;
        };
        const LISTEN: &str = "0A";
        if local.rsplit(':').next() == Some(port.as_str()) && state != LISTEN {
            found.insert(remote.to_string());
        }
    }
    found
}

/// How many connections the server was sent since `before`.
fn new_connections(server: &Server, before: &HashSet<String>) -> usize {
    connections(server).difference(before).count()
}

fn gets(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let before = connections(&server);
    let agent = agent();
    for i in 0..3 {
        let keep_alive =
            check(agent.get(server.url()).call()).map_err(|e| format!("GET {i}: {e}"))?;
        if keep_alive != l.keep_alive {
            return Err(format!("GET {i}: offered keep-alive: {keep_alive}"));
        }
    }
    let used = new_connections(&server, &before);
    let want = if l.keep_alive { 1 } else { 3 };
    if used != want {
        return Err(format!("3 GETs took {used} connections, not {want}"));
    }
    Ok(())
}

fn post_then_get(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let before = connections(&server);
    let agent = agent();
    let json = agent
        .post(server.url())
        .header("Content-Type", "application/json")
        .send(r#"{"greeting": "hello"}"#);
    check(json).map_err(|e| format!("POST with a JSON body: {e}"))?;
    // A body many times the server's buffer.
    let large = vec![b'x'; 100_000];
    check(agent.post(server.url()).send(&large[..]))
        .map_err(|e| format!("POST with 100 kB: {e}"))?;
    check(agent.get(server.url()).call()).map_err(|e| format!("GET after the POSTs: {e}"))?;
    let used = new_connections(&server, &before);
    if used != 1 {
        return Err(format!("2 POSTs and a GET took {used} connections, not 1"));
    }
    Ok(())
}

#[test]
fn gets_every_listing() {
    support::for_every_listing(BATCH, |_| true, gets);
}

#[test]
fn post_then_get_on_one_connection_every_keep_alive_listing() {
    support::for_every_listing(BATCH, |l| l.keep_alive, post_then_get);
}
