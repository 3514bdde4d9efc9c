//! Markdown tables from a results file: a writer per scenario (one module
//! each), and what they share: how a server is named, what a cell without
//! figures says, and the footer every table ends with. Every figure is a
//! median over the rounds from `stats`, written by `format`, laid out by
//! `markdown`. Nothing here measures; everything here can be drawn again
//! from the JSON alone.

mod clients;
mod gil;
mod models;
mod nginx;
mod post;
mod slow;
mod sweep;

use std::fmt::Write;

use crate::format::count;
use crate::results::{Kind, Mode, Results, Scenario, Status};
use crate::servers;
use crate::stats::{Cell, Stats};

pub use models::models;
pub use post::{listing, not_measured};

/// A scenario's table, with what it says beneath.
pub fn scenario(scenario: Scenario, results: &Results) -> String {
    match scenario {
        Scenario::Clients => clients::clients(results),
        Scenario::Post => post::post(results),
        Scenario::Sweep => sweep::sweep(results),
        Scenario::Slow => slow::slow(results),
        Scenario::Nginx => nginx::nginx(results),
        Scenario::Gil => gil::gil(results),
    }
}

/// What a table shows for a cell without figures.
impl Cell {
    fn absent(&self) -> String {
        match self {
            Cell::Stats(_) => String::new(),
            Cell::Absent(why) => (*why).into(),
            Cell::Broken(why) => format!("no figures: {}", short(why)),
        }
    }
}

/// How the tables show the rounds' spread and failures.
impl Stats {
    fn range(&self) -> String {
        format!("{}–{}", count(self.low), count(self.high))
    }

    /// Failed requests, and runs that failed as runs.
    fn failed(&self) -> String {
        let mut text = count(self.failed as f64);
        if self.broken > 0 {
            let _ = write!(text, " (+{} run(s) without figures)", self.broken);
        }
        text
    }
}

/// The first line of a message, fit for a table cell.
fn short(text: &str) -> String {
    let line = text.lines().next().unwrap_or("").replace('|', "/");
    if line.chars().count() > 90 {
        line.chars().take(89).collect::<String>() + "…"
    } else {
        line
    }
}

/// A server's name as the tables show it: listings as code, references
/// plainly.
fn name(results: &Results, server: &str) -> String {
    match results.server(server).map(|s| s.kind) {
        Some(Kind::Listing) | None => format!("`{server}`"),
        Some(_) => servers::label(server),
    }
}

fn mode_words(mode: Mode) -> &'static str {
    match mode {
        Mode::Close => "a new connection per request",
        Mode::KeepAlive => "keep-alive",
    }
}

/// The common ending: the machine, the limits, the command, the raw file,
/// and what the run noticed.
fn footer(out: &mut String, results: &Results, file: Scenario) {
    let json = format!("{file}.json");
    let _ = writeln!(
        out,
        "\nMeasured on {}, {} interleaved round(s), a fresh server for every run. \
         Reproduce with `{}`; every raw figure and the exact command of every \
         run are in [{json}](generated/{json}).",
        results.machine.describe(),
        results.rounds,
        results.command,
    );
    let missing: Vec<String> = results
        .servers
        .iter()
        .filter(|s| s.status == Status::Missing)
        .map(|s| format!("`{}`", s.name))
        .collect();
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "\nListings the benchmark knows that were not in the workspace of this run: {}.",
            missing.join(", ")
        );
    }
    // Earlier runs noted missing listings here too; the line above says it.
    let notes: Vec<&String> = results
        .notes
        .iter()
        .filter(|n| !n.ends_with(": not in this workspace yet"))
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(out, "\nNotes from the run:\n");
        for note in notes {
            let _ = writeln!(out, "- {}", short(note));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_shortened_for_a_cell() {
        assert_eq!(short("refused | reset\nsecond line"), "refused / reset");
        let long = "x".repeat(100);
        let cut = short(&long);
        assert_eq!(cut.chars().count(), 90);
        assert!(cut.ends_with('…'));
        assert_eq!(short(""), "");
    }
}
