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
//! connection shows in the sockets the server holds, in `/proc/PID/fd`.

use std::collections::BTreeSet;

use support::{Listing, Server, WAIT, procfs, start, wait_until};

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

/// The sockets the server's processes hold open, by what `/proc/PID/fd`
/// links to (`socket:[INODE]`): the listening socket, and one for each
/// connection (with the io_uring server's direct descriptors, which
/// `procfs::open_files` finds too). A connection that is kept is the same
/// socket from one request to the next.
fn sockets(server: &Server) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for pid in server.group_pids() {
        let Ok(files) = procfs::open_files(pid) else {
            continue; // it has just ended
        };
        found.extend(files.into_iter().filter(|f| f.starts_with("socket:")));
    }
    found
}

/// The connections the server holds now: its sockets but those it held
/// before any client came.
fn connections(server: &Server, before: &BTreeSet<String>) -> BTreeSet<String> {
    sockets(server).difference(before).cloned().collect()
}

fn gets(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let before = sockets(&server);
    let agent = agent();
    let mut first = None;
    for i in 0..3 {
        let keep_alive =
            check(agent.get(server.url()).call()).map_err(|e| format!("GET {i}: {e}"))?;
        if keep_alive != l.keep_alive {
            return Err(format!("GET {i}: offered keep-alive: {keep_alive}"));
        }
        if l.keep_alive {
            // The same connection, held open by the server and by ureq.
            let now = connections(&server, &before);
            let first = first.get_or_insert_with(|| now.clone());
            if now.len() != 1 || now != *first {
                return Err(format!("GET {i}: connections {now:?}, after {first:?}"));
            }
        }
    }
    // A connection that was not kept is let go.
    wait_until("the server to hold no connection, or the one kept", || {
        connections(&server, &before).len() == usize::from(l.keep_alive)
    });
    Ok(())
}

fn post_then_get(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let before = sockets(&server);
    let agent = agent();
    let json = agent
        .post(server.url())
        .header("Content-Type", "application/json")
        .send(r#"{"greeting": "hello"}"#);
    check(json).map_err(|e| format!("POST with a JSON body: {e}"))?;
    let first = connections(&server, &before);
    if first.len() != 1 {
        return Err(format!("after one POST, connections {first:?}"));
    }
    // A body many times the server's buffer.
    let large = vec![b'x'; 100_000];
    check(agent.post(server.url()).send(&large[..]))
        .map_err(|e| format!("POST with 100 kB: {e}"))?;
    check(agent.get(server.url()).call()).map_err(|e| format!("GET after the POSTs: {e}"))?;
    let now = connections(&server, &before);
    if now != first {
        return Err(format!(
            "the requests did not share one connection: {first:?}, then {now:?}"
        ));
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
