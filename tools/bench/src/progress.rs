//! A progress bar on stderr: one line redrawn in place with `\r` when
//! stderr is a terminal, a plain line per step otherwise (a log, a pipe).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// The widest line drawn in place: wider would wrap, and `\r` would then
/// redraw only its last part.
const WIDTH: usize = 79;

pub struct Progress {
    /// Estimated seconds of every step, and of those done.
    total: f64,
    done: f64,
    steps: usize,
    step: usize,
    started: Instant,
    tty: bool,
    /// A line is drawn in place and not yet ended.
    drawn: bool,
}

impl Progress {
    /// `steps` steps, expected to take `estimate` seconds in all.
    pub fn new(steps: usize, estimate: f64) -> Progress {
        Progress {
            total: estimate.max(1e-3),
            done: 0.0,
            steps,
            step: 0,
            started: Instant::now(),
            tty: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    /// A step begins: say which.
    pub fn begin(&mut self, what: &str) {
        self.step += 1;
        if self.tty {
            let line = self.line(what);
            // Pad over whatever the last line left.
            eprint!("\r{line:<WIDTH$}");
            let _ = std::io::stderr().flush();
            self.drawn = true;
        } else {
            // A log keeps the whole line.
            let head = self.line("");
            eprintln!("{} {what}", head.trim_end());
        }
    }

    /// The step just begun is over; it was estimated at `estimate` seconds.
    pub fn end(&mut self, estimate: f64) {
        self.done += estimate;
    }

    /// A message that stays, above the bar.
    pub fn note(&mut self, message: &str) {
        self.clear();
        eprintln!("{message}");
    }

    /// Ends the bar's line, leaving its last state on screen.
    pub fn finish(&mut self) {
        if self.drawn {
            eprintln!();
            self.drawn = false;
        }
        eprintln!("done in {}", clock(self.started.elapsed()));
    }

    fn clear(&mut self) {
        if self.drawn {
            eprint!("\r{:WIDTH$}\r", "");
            self.drawn = false;
        }
    }

    fn line(&self, what: &str) -> String {
        let fraction = (self.done / self.total).clamp(0.0, 1.0);
        let elapsed = self.started.elapsed();
        let left = if self.done > 0.0 {
            let rate = elapsed.as_secs_f64() / self.done;
            clock(Duration::from_secs_f64(
                (self.total - self.done).max(0.0) * rate,
            ))
        } else {
            clock(Duration::from_secs_f64(self.total))
        };
        let filled = (fraction * 20.0).round() as usize;
        let head = format!(
            "[{}{}] {:>3}% {}/{} {} ~{left} left ",
            "#".repeat(filled),
            ".".repeat(20 - filled),
            (fraction * 100.0).round(),
            self.step,
            self.steps,
            clock(elapsed),
        );
        let room = WIDTH.saturating_sub(head.chars().count());
        let what: String = if what.chars().count() > room {
            let mut short: String = what.chars().take(room.saturating_sub(1)).collect();
            short.push('…');
            short
        } else {
            what.into()
        };
        head + &what
    }
}

/// 83 s -> "1:23"
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_fit() {
        let mut p = Progress::new(4, 40.0);
        p.tty = false;
        p.step = 1;
        p.done = 10.0;
        let line = p.line(&"a very long description ".repeat(10));
        assert!(
            line.starts_with("[#####...............]  25% 1/4 0:00"),
            "{line}"
        );
        assert_eq!(line.chars().count(), WIDTH);
        assert!(line.ends_with('…'));
        assert_eq!(clock(Duration::from_secs(83)), "1:23");
    }
}
