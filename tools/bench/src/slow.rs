//! Slow clients: connections that hold a server's attention without giving
//! it work. A silent one connects and sends nothing; a trickling one sends
//! a request a byte a second, which no per-read timeout ever ends. Both are
//! bounded: each leaves after `hold` at the latest, or as soon as it is
//! told to, and none reconnects once the server has dropped it.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::results::{SlowCase, SlowKind, SlowReport};

/// How often a slow client looks whether it should leave or was dropped.
const POLL: Duration = Duration::from_millis(50);

/// What a trickling client sends, a byte at a time: a complete request,
/// though it never gets to finish it within a run.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: slow.example\r\nConnection: close\r\n\r\n";

/// The gap between a trickling client's bytes.
const TRICKLE_EVERY: Duration = Duration::from_secs(1);

/// Slow clients, connected and holding on.
pub struct SlowClients {
    leave: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Option<Duration>>>,
    connected: usize,
}

impl SlowClients {
    /// Connects `case.count` slow clients to `addr`; each stays at most
    /// `hold`. Returns once all are connected (the kernel has completed
    /// their handshakes, whether or not the server has accepted them).
    pub fn connect(addr: SocketAddr, case: SlowCase, hold: Duration) -> io::Result<SlowClients> {
        let leave = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for _ in 0..case.count {
            let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            // Its life is counted from here, not from when its thread runs.
            let start = Instant::now();
            stream.set_read_timeout(Some(POLL))?;
            stream.set_write_timeout(Some(Duration::from_secs(1)))?;
            let leave = Arc::clone(&leave);
            let kind = case.kind;
            clients.push(thread::spawn(move || {
                hang_on(stream, start, kind, hold, &leave)
            }));
        }
        Ok(SlowClients {
            leave,
            connected: case.count,
            clients,
        })
    }

    /// Tells them all to leave, and reports what the server did to them.
    pub fn leave(self) -> SlowReport {
        self.leave.store(true, Ordering::Relaxed);
        let mut report = SlowReport {
            connected: self.connected,
            ..SlowReport::default()
        };
        for client in self.clients {
            if let Ok(Some(after)) = client.join() {
                report.dropped += 1;
                let secs = after.as_secs_f64();
                report.first_drop = Some(report.first_drop.map_or(secs, |f: f64| f.min(secs)));
            }
        }
        report
    }
}

/// One slow client's life. Returns when the server dropped it, if it did.
fn hang_on(
    mut stream: TcpStream,
    start: Instant,
    kind: SlowKind,
    hold: Duration,
    leave: &AtomicBool,
) -> Option<Duration> {
    let mut sent = 0;
    let mut next_byte = start;
    let mut buf = [0u8; 512];
    while !leave.load(Ordering::Relaxed) && start.elapsed() < hold {
        if kind == SlowKind::Trickle && sent < REQUEST.len() && Instant::now() >= next_byte {
            if stream.write_all(&REQUEST[sent..=sent]).is_err() {
                return Some(start.elapsed());
            }
            sent += 1;
            next_byte += TRICKLE_EVERY;
        }
        // Waits up to POLL. A server answers a slow client, if at all, with
        // an error status and a close; the close is what counts.
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn silent_and_trickling_clients() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();

        // Silent, and dropped by the server after a moment.
        let case = SlowCase {
            kind: SlowKind::Silent,
            count: 2,
        };
        let clients = SlowClients::connect(addr, case, Duration::from_secs(10)).unwrap();
        let (first, _) = listener.accept().unwrap();
        let (mut second, _) = listener.accept().unwrap();
        thread::sleep(Duration::from_millis(100));
        drop(first);
        second
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut byte = [0u8; 1];
        assert!(
            second.read(&mut byte).is_err(),
            "a silent client sent something"
        );
        let report = clients.leave();
        assert_eq!((report.connected, report.dropped), (2, 1));
        assert!(report.first_drop.unwrap() >= 0.1);

        // Trickling: one byte now, the next a second later; leaves at `hold`.
        let case = SlowCase {
            kind: SlowKind::Trickle,
            count: 1,
        };
        let started = Instant::now();
        let clients = SlowClients::connect(addr, case, Duration::from_millis(1500)).unwrap();
        let (mut server_side, _) = listener.accept().unwrap();
        server_side
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        server_side.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"GE");
        assert!(started.elapsed() >= Duration::from_millis(1500));
        assert_eq!(clients.leave().dropped, 0);
    }
}
