//! The book's benchmark. Every figure in the book comes from one of its
//! commands, which write a JSON results file and the Markdown tables the
//! chapters include, both under `src/generated/`:
//!
//! - `bench clients`: the load generator against `ab` and `wrk`, all three
//!   against the same server, to show which of them measures the server
//!   and which measures itself;
//! - `bench post`: the post's benchmark (100,000 requests, 8 at a time, a
//!   new connection each) against every server listing, with `ab` as the
//!   post ran it and with the book's load generator.
//!
//! Runs are interleaved (A B C, A B C, ...) so that a machine that gets
//! busier or quieter during the run does not favour whoever ran first, and
//! the tables show medians. CPU time is read from the kernel: the clients'
//! from `getrusage(RUSAGE_CHILDREN)`, the servers' from `/proc`.

mod machine;
mod run;
mod table;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use serde::Serialize;

use crate::run::{Client, Sample};

/// The server listings, in the order the book introduces them.
const SERVERS: &[&str] = &[
    "linear",
    "prefork",
    "thread-pool",
    "threads-accept",
    "thread-per-connection",
];

/// Where the chapters look for their figures.
fn out_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../src/generated")
}

struct Options {
    rounds: usize,
    requests: u64,
    concurrency: usize,
    wrk_seconds: u64,
    only: Vec<String>,
    out: PathBuf,
}

const USAGE: &str = "\
usage: bench COMMAND [options]

commands:
  clients   the load generator, ab and wrk against the linear server
  post      the post's benchmark against every server listing

options:
  --rounds N        interleaved rounds (default 3)
  -n N              requests per run (default 100000)
  -c N              concurrent connections (default 8)
  --only NAME       only this server (repeatable; `post` only)
  --quick           a smoke run: 1 round of 2000 requests
  --out DIR         where to write (default: the book's src/generated)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first().cloned() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let options = match parse_options(&args[1..]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match command.as_str() {
        "clients" => clients(&options),
        "post" => post(&options),
        "-h" | "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(format!("unknown command {other}")),
    };
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
        rounds: 3,
        requests: 100_000,
        concurrency: 8,
        wrk_seconds: 5,
        only: Vec::new(),
        out: out_dir(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--rounds" => o.rounds = number(value()?)?,
            "-n" => o.requests = number(value()?)?,
            "-c" => o.concurrency = number(value()?)?,
            "--only" => o.only.push(value()?.clone()),
            "--out" => o.out = PathBuf::from(value()?),
            "--quick" => {
                o.rounds = 1;
                o.requests = 2_000;
                o.wrk_seconds = 1;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.rounds == 0 || o.requests == 0 || o.concurrency == 0 {
        return Err("rounds, -n and -c must be at least 1".into());
    }
    Ok(o)
}

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("not a number: {s}"))
}

/// Builds the listings and the load generator in release mode and returns
/// the directory that holds their binaries.
fn build(packages: &[&str]) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--quiet"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    let status = cmd.status().map_err(|e| format!("running cargo: {e}"))?;
    if !status.success() {
        return Err("cargo build --release failed".into());
    }
    // We are target/<profile>/bench; the release binaries sit beside
    // target/release whatever profile we were built with.
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let target = exe.parent().and_then(Path::parent).ok_or("no target dir")?;
    Ok(target.join("release"))
}

/// What every results file records besides the figures.
#[derive(Serialize)]
struct Results<'a> {
    scenario: &'a str,
    command: String,
    machine: machine::Machine,
    rounds: usize,
    requests: u64,
    concurrency: usize,
    samples: Vec<Sample>,
}

/// The command that produced a results file, as a reader would type it.
fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo run --release -p bench -- {}", args.join(" "))
}

fn write(options: &Options, file: &str, contents: &str) -> Result<(), String> {
    std::fs::create_dir_all(&options.out).map_err(|e| e.to_string())?;
    let path = options.out.join(file);
    std::fs::write(&path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// The load generator, `ab` and `wrk`, interleaved, against the linear
/// server.
fn clients(o: &Options) -> Result<(), String> {
    let bin = build(&["linear", "loadgen"])?;
    let clients = [
        Client::Ab,
        Client::Loadgen(bin.join("loadgen")),
        Client::Wrk {
            seconds: o.wrk_seconds,
        },
    ];
    let server = "linear";
    let mut samples = Vec::new();
    let total = o.rounds * clients.len();
    for round in 0..o.rounds {
        for (i, client) in clients.iter().enumerate() {
            eprintln!(
                "[{}/{total}] round {} of {}: {} against {server}",
                round * clients.len() + i + 1,
                round + 1,
                o.rounds,
                client.name()
            );
            samples.push(run::measure(
                &bin,
                server,
                client,
                round,
                o.requests,
                o.concurrency,
            )?);
        }
    }
    let results = Results {
        scenario: "clients",
        command: command_line(),
        machine: machine::Machine::read(),
        rounds: o.rounds,
        requests: o.requests,
        concurrency: o.concurrency,
        samples,
    };
    write(o, "clients.json", &to_json(&results)?)?;
    write(o, "clients.md", &table::clients(&results))?;
    eprintln!("one more loadgen run, for its human report");
    let report = run::loadgen_report(&bin, server, o.requests, o.concurrency)?;
    write(o, "loadgen-report.txt", &report)
}

/// The post's benchmark against every server listing, with `ab` and with
/// the load generator.
fn post(o: &Options) -> Result<(), String> {
    let servers: Vec<&str> = SERVERS
        .iter()
        .copied()
        .filter(|s| o.only.is_empty() || o.only.iter().any(|n| n == s))
        .collect();
    if servers.is_empty() {
        return Err(format!("no server listing named {:?}", o.only));
    }
    let mut packages = servers.clone();
    packages.push("loadgen");
    let bin = build(&packages)?;
    let clients = [Client::Ab, Client::Loadgen(bin.join("loadgen"))];
    let mut samples = Vec::new();
    let total = o.rounds * servers.len() * clients.len();
    let mut done = 0;
    for round in 0..o.rounds {
        for server in &servers {
            for client in &clients {
                done += 1;
                eprintln!(
                    "[{done}/{total}] round {} of {}: {} against {server}",
                    round + 1,
                    o.rounds,
                    client.name()
                );
                samples.push(run::measure(
                    &bin,
                    server,
                    client,
                    round,
                    o.requests,
                    o.concurrency,
                )?);
            }
        }
    }
    let results = Results {
        scenario: "post",
        command: command_line(),
        machine: machine::Machine::read(),
        rounds: o.rounds,
        requests: o.requests,
        concurrency: o.concurrency,
        samples,
    };
    write(o, "post.json", &to_json(&results)?)?;
    write(o, "post.md", &table::post(&results, &servers))?;
    for server in &servers {
        write(
            o,
            &format!("{server}.md"),
            &table::post(&results, &[server]),
        )?;
    }
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Result<String, String> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| e.to_string())
}
