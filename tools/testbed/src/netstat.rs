//! What the kernel's TCP counters say happened during a run: the
//! differences, before and after, in the counters of `/proc/net/netstat`
//! and `/proc/net/snmp` that tell of connections the server never saw or
//! packets sent again, and the sockets left in TIME_WAIT
//! (`/proc/net/sockstat`).
//!
//! The counters belong to the network namespace, not to a process: read
//! them around a run with nothing else on the machine's loopback, or they
//! count the others too.

use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

/// The counters, at one moment or as the difference over a run.
/// The benchmark keeps the difference over each run in its results file,
/// under these field names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// A completed handshake found the accept queue full (the listener's
    /// backlog): the connection was not accepted, and the client's final
    /// ACK is ignored until it retries.
    pub listen_overflows: u64,
    /// Connections dropped at the listener for any reason, overflows
    /// included.
    pub listen_drops: u64,
    /// SYNs (and SYN-ACKs) sent again after no answer: the first retry
    /// waits a second, which is where latencies of about 1 s come from.
    pub syn_retrans: u64,
    /// Segments of any kind sent again.
    pub retrans_segs: u64,
    /// Retransmission timers that expired.
    pub tcp_timeouts: u64,
    /// Sockets in TIME_WAIT at the moment of reading (a level, not a
    /// count: the difference says how many a run left behind).
    pub time_wait: i64,
}

impl Counters {
    /// The counters as they are now.
    pub fn read() -> io::Result<Counters> {
        let netstat = fs::read_to_string("/proc/net/netstat")?;
        let snmp = fs::read_to_string("/proc/net/snmp")?;
        let sockstat = fs::read_to_string("/proc/net/sockstat")?;
        let ext = |name| field(&netstat, "TcpExt", name).unwrap_or(0);
        Ok(Counters {
            listen_overflows: ext("ListenOverflows"),
            listen_drops: ext("ListenDrops"),
            syn_retrans: ext("TCPSynRetrans"),
            tcp_timeouts: ext("TCPTimeouts"),
            retrans_segs: field(&snmp, "Tcp", "RetransSegs").unwrap_or(0),
            time_wait: time_wait(&sockstat).unwrap_or(0) as i64,
        })
    }

    /// What changed from `before` to `self`.
    pub fn since(&self, before: &Counters) -> Counters {
        Counters {
            listen_overflows: self
                .listen_overflows
                .saturating_sub(before.listen_overflows),
            listen_drops: self.listen_drops.saturating_sub(before.listen_drops),
            syn_retrans: self.syn_retrans.saturating_sub(before.syn_retrans),
            retrans_segs: self.retrans_segs.saturating_sub(before.retrans_segs),
            tcp_timeouts: self.tcp_timeouts.saturating_sub(before.tcp_timeouts),
            time_wait: self.time_wait - before.time_wait,
        }
    }

    /// The counters of trouble: all of them but TIME_WAIT, which every run
    /// with a new connection per request changes.
    pub fn trouble(&self) -> [u64; 5] {
        [
            self.listen_overflows,
            self.listen_drops,
            self.syn_retrans,
            self.retrans_segs,
            self.tcp_timeouts,
        ]
    }

    /// Whether any counter of trouble moved.
    pub fn any_trouble(&self) -> bool {
        self.trouble().iter().any(|&n| n > 0)
    }
}

/// The value of `name` in the table `prefix` of a `/proc/net/netstat` or
/// `/proc/net/snmp` text: each table is two lines, `Prefix: names...`
/// then `Prefix: values...`.
fn field(text: &str, prefix: &str, name: &str) -> Option<u64> {
    let tag = format!("{prefix}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&tag));
    while let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        let at = names.split_whitespace().position(|n| n == name);
        if let Some(at) = at {
            return values.split_whitespace().nth(at)?.parse().ok();
        }
    }
    None
}

/// `tw` on the `TCP:` line of `/proc/net/sockstat`.
fn time_wait(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    words.find(|&w| w == "tw")?;
    words.next()?.parse().ok()
}

/// A listener on a free port of 127.0.0.1 with an accept queue of
/// `backlog` (std's `TcpListener::bind` always asks for 128): accept
/// nothing from it, connect more clients than that, and the counters move.
pub fn listener_with_backlog(backlog: i32) -> io::Result<std::net::TcpListener> {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, listen, socket,
    };
    use std::os::fd::AsRawFd;
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0))?;
    listen(&fd, Backlog::new(backlog)?)?;
    Ok(std::net::TcpListener::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    #[test]
    fn parses_the_tables() {
        let netstat = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\n\
                       TcpExt: 1 7 9\n\
                       IpExt: InNoRoutes\nIpExt: 3\n";
        assert_eq!(field(netstat, "TcpExt", "ListenDrops"), Some(9));
        assert_eq!(field(netstat, "TcpExt", "Nope"), None);
        assert_eq!(field(netstat, "IpExt", "InNoRoutes"), Some(3));
        let sockstat = "sockets: used 15\nTCP: inuse 1 orphan 0 tw 47 alloc 1 mem 108\n";
        assert_eq!(time_wait(sockstat), Some(47));
    }

    #[test]
    fn reads_this_machine() {
        let now = Counters::read().expect("/proc/net is readable");
        let later = Counters::read().unwrap();
        let change = later.since(&now);
        assert!(change.listen_overflows < 1_000_000, "{change:?}");
    }

    /// A listener that never accepts, with a backlog of 1, and more
    /// clients than that: the kernel counts the handshakes it could not
    /// queue.
    #[test]
    fn a_full_backlog_is_counted() {
        let before = Counters::read().unwrap();
        let listener = listener_with_backlog(1).unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<TcpStream> = (0..8)
            .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
            .collect();
        // The overflowing handshakes are counted as the final ACKs arrive.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut change = Counters::read().unwrap().since(&before);
        while change.listen_overflows + change.listen_drops == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            change = Counters::read().unwrap().since(&before);
        }
        drop(clients);
        assert!(
            change.listen_overflows > 0 || change.listen_drops > 0,
            "no overflow counted: {change:?}"
        );
    }
}
