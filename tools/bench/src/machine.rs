//! Which machine a run happened on, and when, as the kernel tells it; and
//! the limits that bound how many connections a run can hold at once.

use std::time::{SystemTime, UNIX_EPOCH};

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Machine {
    pub cpu: String,
    pub cores: usize,
    pub kernel: String,
    /// The day of the run, UTC, as YYYY-MM-DD.
    pub date: String,
}

impl Machine {
    pub fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, name)| name.trim().to_string())
            .unwrap_or_else(|| "unknown CPU".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("Linux {}", s.trim()))
            .unwrap_or_else(|_| "unknown kernel".into());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let days = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400);
        Machine {
            cpu,
            cores,
            kernel,
            date: civil_date(days as i64),
        }
    }

    /// "AMD EPYC, 2 cores, Linux 6.1.0, on 2026-11-22"
    pub fn describe(&self) -> String {
        format!(
            "{}, {} cores, {}, on {}",
            self.cpu, self.cores, self.kernel, self.date
        )
    }
}

/// What limits the number of connections a run can hold at once, as the
/// run found (and set) them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Limits {
    /// RLIMIT_NOFILE's soft limit before the run raised it to the hard one.
    pub nofile_before: u64,
    /// The soft limit the run had, which the servers and clients it
    /// started inherited.
    pub nofile: u64,
    pub nofile_hard: u64,
    /// `/proc/sys/net/ipv4/ip_local_port_range`: where the kernel picks a
    /// client's port from. Every connection open at once needs its own.
    pub ports: [u32; 2],
    /// `/proc/sys/net/core/somaxconn`: the cap on any listen backlog.
    pub somaxconn: Option<u64>,
}

/// Descriptors a process needs besides one per connection.
const SPARE_FDS: u64 = 64;

impl Limits {
    /// Raises this process's soft limit on open files to the hard limit, so
    /// that every server and client it starts inherits it, and reads the
    /// rest.
    pub fn raise_and_read() -> Limits {
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
        let nofile = if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
            hard
        } else {
            soft
        };
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let range: Vec<u32> = read("/proc/sys/net/ipv4/ip_local_port_range")
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let ports = match range[..] {
            [lo, hi] if lo <= hi => [lo, hi],
            // The kernel's default.
            _ => [32768, 60999],
        };
        Limits {
            nofile_before: soft,
            nofile,
            nofile_hard: hard,
            ports,
            somaxconn: read("/proc/sys/net/core/somaxconn").trim().parse().ok(),
        }
    }

    /// How many ports a client can connect from.
    pub fn port_count(&self) -> u64 {
        u64::from(self.ports[1] - self.ports[0]) + 1
    }

    /// Why `connections` at once are beyond the limits, if they are.
    pub fn refuse(&self, connections: usize) -> Option<String> {
        let c = connections as u64;
        if c + SPARE_FDS > self.nofile {
            Some(format!(
                "{connections} connections need more open files than RLIMIT_NOFILE allows ({} soft, {} hard)",
                self.nofile, self.nofile_hard
            ))
        } else if c > self.port_count() {
            Some(format!(
                "{connections} connections need more client ports than ip_local_port_range has ({})",
                self.port_count()
            ))
        } else {
            None
        }
    }

    /// One line for a caption.
    pub fn describe(&self) -> String {
        let raised = if self.nofile_before < self.nofile {
            format!(" (raised from {})", self.nofile_before)
        } else {
            String::new()
        };
        let somaxconn = self
            .somaxconn
            .map_or("unknown".to_string(), |s| s.to_string());
        format!(
            "open files (RLIMIT_NOFILE) {}{raised}; client ports {}–{} ({}); somaxconn {somaxconn}",
            self.nofile,
            self.ports[0],
            self.ports[1],
            self.port_count()
        )
    }
}

/// Days since 1970-01-01 to a calendar date (the proleptic Gregorian
/// calendar, by counting 400-year eras from 0000-03-01).
fn civil_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(11_016), "2000-02-29");
        assert_eq!(civil_date(20_414), "2025-11-22");
        assert_eq!(civil_date(-1), "1969-12-31");
    }

    #[test]
    fn limits_bound_the_connections() {
        let limits = Limits {
            nofile_before: 1024,
            nofile: 1024,
            nofile_hard: 1024,
            ports: [32768, 60999],
            somaxconn: Some(4096),
        };
        assert_eq!(limits.port_count(), 28_232);
        assert!(limits.refuse(256).is_none());
        assert!(limits.refuse(1024).unwrap().contains("RLIMIT_NOFILE"));
        let few_ports = Limits {
            nofile: 100_000,
            ports: [60000, 60499],
            ..limits
        };
        assert!(few_ports.refuse(1024).unwrap().contains("ports"));
        assert!(few_ports.describe().contains("60000–60499 (500)"));
    }
}
