//! The book's benchmark. Every figure in the book comes from one of its
//! scenarios, each of which writes a JSON results file under
//! `src/generated/`; the Markdown tables and SVG charts the chapters
//! include are drawn from those files alone (`bench render` draws them
//! again without measuring anything).
//!
//! - `clients`: the load generator against its peers (`ab`, `wrk`, `oha`,
//!   and `wrk2` where installed) on one server, in closed and open loop;
//! - `post`: the post's benchmark (100,000 requests, 8 at a time, a new
//!   connection each) on every listing, with `ab` and the load generator;
//! - `sweep`: every listing (and nginx) from 1 to 1024 clients at once,
//!   closing connections and keeping them alive;
//! - `slow`: clients that send nothing, or a byte a second, while a normal
//!   load runs;
//! - `nginx`: the book's goals against nginx's single worker;
//! - `gil`: the post's models in Python beside the same models in Rust;
//! - `omission`: coordinated omission, shown: a constant-rate run with the
//!   server stopped for a second in the middle;
//! - `accepts`: how the servers whose workers share one source of
//!   connections share them out, and their wake-ups per connection
//!   (`accepts.rs`: its own results file, read with `perf`).
//! - `idle`, `handler`, `load`, `backlog`: the questions the model chapters
//!   raise (what idle connections cost, what a slow handler does, latency
//!   against offered load, the listen backlog's one-second cliff).
//!
//! Runs are interleaved (A B C, A B C, ...), each with a fresh server, so
//! that a machine that gets busier or quieter does not favour whoever ran
//! first; the tables show medians and ranges. CPU time is read from the
//! kernel: the clients' from `getrusage(RUSAGE_CHILDREN)`, the servers'
//! (their whole process group) from `/proc`; and around every run, the
//! kernel's TCP counters (`testbed::netstat`).

mod accepts;
mod chart;
mod format;
mod idle;
mod machine;
mod markdown;
mod progress;
mod render;
mod results;
mod run;
mod scenario;
mod servers;
mod slow;
mod stats;
mod syscalls;
mod table;
mod target;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::results::Scenario;
use crate::scenario::{Context, Options};

const USAGE: &str = "\
usage: bench COMMAND [options]

commands:
  all       every scenario below, then the tables and charts
  clients   the load generator against ab, wrk, oha and wrk2 on one server,
            in closed loop and in open loop
  post      the post's benchmark (ab -n 100000 -c 8) on every listing
  sweep     every listing and nginx at 1 to 1024 clients, close and keep-alive
  slow      silent and trickling clients beside a normal load
  nginx     the book's goals against nginx with one worker (wrk -t2 -c64)
  gil       the post's models in Python beside the same models in Rust
  omission  a constant-rate run with the server stopped for a second
  uring-steps  the io_uring chapter's steps beside the floor and epoll, at
            64 clients, keep-alive and a new connection per request
  accepts   how workers share the connections, and wake-ups per connection
            (needs perf, and the right to count tracepoints)
  idle      a fixed open-loop load beside 0 to 10,000 idle connections
  handler   every listing at /cpu/1000 and /sleep/10: a slow handler
  load      latency against offered load, open loop, past saturation
  backlog   LISTEN_BACKLOG 128 and 1024 against 256 and 1024 clients
  render    draw the tables and charts again from the results files

options:
  --quick           a smoke run in seconds: one round, tiny loads
  --rounds N        interleaved rounds (default 3)
  --only NAME       only this listing (repeatable); references still run
  --no-nginx        leave nginx out even if it is installed
  --out DIR         where to write (default: the book's src/generated)
  --estimate        only say how many runs and roughly how long, then stop";

/// Where the chapters look for their figures.
fn default_out() -> PathBuf {
    testbed::workspace().join("src/generated")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first().cloned() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    if command == "-h" || command == "--help" {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let options = match parse_options(&args[1..]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Every command that measures writes results files only; the tables
    // and charts are drawn once, from all of them, at the end.
    let (out, draw) = (
        options.out.clone(),
        command != "render" && !options.estimate,
    );
    let result = match command.as_str() {
        "render" => render::all(&options.out),
        // accepts has no estimate: under a minute and a half on two cores.
        "all" if options.estimate => measure(&Scenario::ALL, options, &args),
        "all" => measure(&Scenario::ALL, options.clone(), &args)
            .and_then(|()| accepts::measure(&options, command_line(&args))),
        "accepts" if options.estimate => Err("accepts has no estimate".into()),
        "accepts" => accepts::measure(&options, command_line(&args)),
        name => match name.parse() {
            Ok(scenario) => measure(&[scenario], options, &args),
            Err(_) => Err(format!("unknown command {name}\n{USAGE}")),
        },
    };
    let result = result.and_then(|()| if draw { render::all(&out) } else { Ok(()) });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        rounds: 0,
        only: Vec::new(),
        out: default_out(),
        no_nginx: false,
        estimate: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--rounds" => {
                o.rounds = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--rounds wants a whole number above 0")?;
            }
            "--only" => {
                let name = value()?;
                match servers::find(name) {
                    Some(spec) if spec.is_listing() => o.only.push(name.clone()),
                    _ => return Err(format!("--only: no listing named {name}")),
                }
            }
            "--out" => o.out = PathBuf::from(value()?),
            "--quick" => o.quick = true,
            "--no-nginx" => o.no_nginx = true,
            "--estimate" => o.estimate = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.rounds == 0 {
        o.rounds = if o.quick { 1 } else { 3 };
    }
    Ok(o)
}

/// How a table says to reproduce it.
fn command_line(args: &[String]) -> String {
    format!("cargo run --release -p bench -- {}", args.join(" "))
}

/// Runs `scenarios`, writes each one's results file, then every table and
/// chart.
fn measure(scenarios: &[Scenario], options: Options, args: &[String]) -> Result<(), String> {
    let command = command_line(args);
    let out = options.out.clone();
    let ctx = Context::new(options, command)?;
    let plans: Vec<_> = scenarios.iter().map(|&s| ctx.plan(s)).collect();
    if ctx.options.estimate {
        let (runs, secs) = ctx.estimate(&plans);
        println!(
            "{runs} runs, about {}:{:02} (the progress bar's estimate)",
            secs as u64 / 60,
            secs as u64 % 60
        );
        return Ok(());
    }
    std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    // Each results file is written as soon as its scenario is over.
    ctx.run(plans, |results| {
        render::write(
            &out.join(format!("{}.json", results.scenario)),
            &results.to_json()?,
        )
    })
}
