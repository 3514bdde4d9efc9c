//! What every server listing does: answer with exactly the right bytes,
//! cope with a request that arrives in pieces, survive a short load with
//! every byte checked, and stop cleanly on SIGTERM.
//!
//! Each check is a test that puts every listing of the registry
//! (`testbed::LISTINGS`) through it, a few at a time, each against its own
//! server on its own port; a failure names the listing.

use std::time::{Duration, Instant};

use support::{GET_AB, GET_CLOSE, Listing, WAIT, assert_bytes, exchange, start};

/// How many listings a check runs at once.
const BATCH: usize = 4;

fn exact_bytes(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    for request in [GET_CLOSE, GET_AB] {
        let got = exchange(server.addr(), &[request], Duration::ZERO);
        assert_bytes(&got, support::RESPONSE);
    }
    Ok(())
}

fn split_request(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    // Cut inside the method, inside a header, and between "\r" and "\n" of
    // the blank line: the server must wait for the whole head.
    let parts: [&[u8]; 4] = [
        b"GE",
        b"T / HTTP/1.1\r\nHost: te",
        b"st\r\nConnection: close\r\n\r",
        b"\n",
    ];
    let got = exchange(server.addr(), &parts, Duration::from_millis(50));
    assert_bytes(&got, support::RESPONSE);
    Ok(())
}

/// `/cpu/N` and `/sleep/N` are answered with the same bytes as `/`, after
/// the work; a target asking for malformed work, or too much, gets a 400
/// that says what may be asked, at once.
fn work_targets(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let get =
        |target: &str| format!("GET {target} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    for (target, at_least) in [("/cpu/3000", 3), ("/sleep/30", 30)] {
        let start = Instant::now();
        let got = exchange(server.addr(), &[get(target).as_bytes()], Duration::ZERO);
        assert_bytes(&got, support::RESPONSE);
        let took = start.elapsed();
        if took < Duration::from_millis(at_least) {
            return Err(format!("{target} answered after only {took:?}"));
        }
    }
    for target in ["/cpu/x", "/cpu/", "/sleep/99999999", "/cpu/1000001"] {
        let got = exchange(server.addr(), &[get(target).as_bytes()], Duration::ZERO);
        assert_bytes(&got, support::BAD_WORK);
    }
    Ok(())
}

fn short_load(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let mut config = loadgen::Config::new(server.addr());
    config.requests = 2_000;
    config.concurrency = 8;
    config.timeout = WAIT;
    let report = loadgen::run(&config).expect("run the load generator");
    assert_eq!(report.failures, loadgen::Failures::default(), "{report}");
    assert_eq!(report.completed, 2_000, "{report}");
    assert_eq!(report.body_bytes, 2_000 * 11, "{report}");
    Ok(())
}

fn short_load_keep_alive(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let mut config = loadgen::Config::new(server.addr());
    config.requests = 2_000;
    config.concurrency = 8;
    config.keep_alive = true;
    config.timeout = WAIT;
    let report = loadgen::run(&config).expect("run the load generator");
    assert_eq!(report.failures, loadgen::Failures::default(), "{report}");
    assert_eq!(report.completed, 2_000, "{report}");
    // A listing without keep-alive answers "Connection: close" every time,
    // which a keep-alive client must accept; one with it reuses connections.
    if l.keep_alive {
        assert!(report.connections < 2_000, "{report}");
    } else {
        assert_eq!(report.connections, 2_000, "{report}");
    }
    Ok(())
}

fn clean_stop(l: &Listing) -> Result<(), String> {
    let server = start(l.name);
    let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
    assert_bytes(&got, support::RESPONSE);
    let pid = server.pid();
    let stopped = server.stop(WAIT).expect("stop the server");
    assert!(!stopped.killed, "{pid} ignored SIGTERM for {WAIT:?}");
    // The whole process group is gone: no worker, no orphan.
    let left = support::procfs::group_members(pid);
    assert!(left.is_empty(), "processes left behind: {left:?}");
    Ok(())
}

#[test]
fn exact_bytes_every_listing() {
    support::for_every_listing(BATCH, |_| true, exact_bytes);
}

#[test]
fn split_request_every_listing() {
    support::for_every_listing(BATCH, |_| true, split_request);
}

#[test]
fn work_targets_every_listing() {
    support::for_every_listing(BATCH, |_| true, work_targets);
}

#[test]
fn short_load_every_listing() {
    support::for_every_listing(BATCH, |_| true, short_load);
}

#[test]
fn short_load_keep_alive_every_listing() {
    support::for_every_listing(BATCH, |_| true, short_load_keep_alive);
}

#[test]
fn clean_stop_every_listing() {
    support::for_every_listing(BATCH, |_| true, clean_stop);
}
