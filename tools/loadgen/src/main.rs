//! `loadgen`: the command-line face of the library, in the manner of `ab`.

use std::process::ExitCode;
use std::time::Duration;

use loadgen::{Config, Expect};

const USAGE: &str = "\
usage: loadgen [-n REQUESTS] [-c CONCURRENCY] [-t THREADS] [-k] [-s TIMEOUT_SECS]
               [--any] [--json] URL

Sends REQUESTS GET requests (default 1000) to URL, CONCURRENCY at a time
(default 8), and checks every response: byte for byte against the book's
answer, or with --any, only that it is a well-formed 2xx response.

  -n REQUESTS      requests in all
  -c CONCURRENCY   requests in flight at once, each on its own connection
  -t THREADS       worker threads (default: min(CONCURRENCY, cores))
  -k               keep connections alive and reuse them
  -s TIMEOUT_SECS  the most one request may take (default 10, fractions ok)
  --any            accept any well-formed 2xx response
  --json           print the report as one line of JSON
  -h, --help       print this

URL is http://HOST[:PORT][/PATH]. Exits with 0 when every request completed
as expected, 1 when any failed, 2 on a usage or setup error.";

/// What the command line asks for.
struct Args {
    config: Config,
    json: bool,
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("loadgen: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let report = match loadgen::run(&args.config) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!("{report}");
    }
    if report.failures.total() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `Ok(None)` when help was asked for.
fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut requests, mut concurrency, mut threads, mut timeout) = (None, None, None, None);
    let (mut keep_alive, mut any, mut json) = (false, false, false);
    let mut url = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-n" => requests = Some(number(&arg, value()?)?),
            "-c" => concurrency = Some(number(&arg, value()?)?),
            "-t" => threads = Some(number(&arg, value()?)?),
            "-s" => {
                let text = value()?;
                let secs = text
                    .parse::<f64>()
                    .ok()
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .filter(|d| !d.is_zero());
                timeout = Some(secs.ok_or(format!(
                    "-s wants a positive number of seconds, not {text:?}"
                ))?);
            }
            "-k" => keep_alive = true,
            "--any" => any = true,
            "--json" => json = true,
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ if url.is_some() => return Err(format!("more than one URL: {arg}")),
            _ => url = Some(arg),
        }
    }
    let url = url.ok_or("no URL given")?;
    let mut config = Config::from_url(&url).map_err(|e| e.to_string())?;
    config.requests = requests.unwrap_or(config.requests);
    config.concurrency = concurrency.unwrap_or(config.concurrency);
    config.threads = threads.unwrap_or(config.threads);
    config.timeout = timeout.unwrap_or(config.timeout);
    config.keep_alive = keep_alive;
    if any {
        config.expect = Expect::Any;
    }
    if config.concurrency == 0 {
        return Err("-c must be at least 1".to_string());
    }
    Ok(Some(Args { config, json }))
}

fn number<T: std::str::FromStr>(option: &str, text: String) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{option} wants a whole number, not {text:?}"))
}
