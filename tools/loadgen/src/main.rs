//! `loadgen`: the command-line face of the library, in the manner of `ab`.

use std::process::ExitCode;
use std::time::Duration;

use loadgen::{Config, Expect};

/// How long an open-loop run lasts when neither -n nor -d says.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

const USAGE: &str = "\
usage: loadgen [-n REQUESTS] [-d SECS] [--rate R] [-c CONCURRENCY] [-t THREADS]
               [-k] [-s TIMEOUT_SECS] [--any] [--json] URL

Sends GET requests to URL and checks every response: byte for byte against
the book's answer, or with --any, only that it is a well-formed 2xx
response. Then reports how many completed, how many failed and why, their
latency percentiles (p50, p90, p99, p99.9, max), how many requests each
connection completed (min, median, max), and the client's own CPU time.

Closed loop (the default): CONCURRENCY connections (default 8) each send
their next request as soon as the last one is answered.

Open loop (--rate R): R requests per second in all, each due at a fixed
time whether or not earlier ones were answered. A due request waits for a
free connection if all CONCURRENCY are busy. Two latencies are reported:
from the send (as in closed loop), and corrected, from the moment the
request was due, which counts the time it waited behind a slow server.
The report also gives the rate achieved, how late requests were sent, and
the generator's own schedule lag (how late it sent a request that was due
and had a free connection), so that its lateness can be told from the
server's.

  -n REQUESTS      the most requests to send
  -d SECS          the most time to send for (fractions ok). Closed loop:
                   no request starts after it. Open loop: the schedule ends
                   there, and requests due before its end are still sent,
                   however late (an overloaded server can make the run up
                   to TIMEOUT_SECS longer). With -n too, whichever comes
                   first. Without either: -n 1000 in closed loop, -d 10
                   with --rate
  --rate R         open loop: R requests per second in all (fractions ok)
  -c CONCURRENCY   requests in flight at once, each on its own connection;
                   in open loop, the most connections open at once
  -t THREADS       worker threads (default: min(CONCURRENCY, cores))
  -k               keep connections alive and reuse them
  -s TIMEOUT_SECS  the most one request may take (default 10, fractions ok);
                   in open loop also the most a due request waits for a
                   connection before it counts as a timeout, never sent
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
    let (mut requests, mut concurrency, mut threads) = (None, None, None);
    let (mut timeout, mut duration, mut rate) = (None, None, None);
    let (mut keep_alive, mut any, mut json) = (false, false, false);
    let mut url = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-n" => requests = Some(number(&arg, value()?)?),
            "-c" => concurrency = Some(number(&arg, value()?)?),
            "-t" => threads = Some(number(&arg, value()?)?),
            "-s" => timeout = Some(seconds(&arg, value()?)?),
            "-d" => duration = Some(seconds(&arg, value()?)?),
            "--rate" => {
                let text = value()?;
                let r = text
                    .parse::<f64>()
                    .ok()
                    .filter(|r| r.is_finite() && *r > 0.0);
                rate = Some(r.ok_or(format!(
                    "--rate wants a positive number of requests per second, not {text:?}"
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
    // Without a bound, the default one: by count in closed loop, by time in
    // open loop. With -d alone, no bound by count.
    if requests.is_none() && duration.is_none() && rate.is_some() {
        duration = Some(DEFAULT_DURATION);
    }
    config.requests = match (requests, duration) {
        (Some(n), _) => n,
        (None, Some(_)) => u64::MAX,
        (None, None) => config.requests,
    };
    config.duration = duration;
    config.rate = rate;
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

/// A positive number of seconds, fractions allowed.
fn seconds(option: &str, text: String) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or(format!(
            "{option} wants a positive number of seconds, not {text:?}"
        ))
}

fn number<T: std::str::FromStr>(option: &str, text: String) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{option} wants a whole number, not {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Option<Args>, String> {
        parse(line.split_whitespace().map(String::from))
    }

    fn config(line: &str) -> Config {
        args(line).unwrap().unwrap().config
    }

    #[test]
    fn closed_loop_by_default() {
        let c = config("http://127.0.0.1:9527/");
        assert_eq!((c.requests, c.duration, c.rate), (1000, None, None));
        assert_eq!((c.concurrency, c.threads, c.keep_alive), (8, 0, false));
        assert_eq!(c.timeout, Duration::from_secs(10));
        let c = config("-n 5 -c 3 -t 2 -k -s 0.5 --any http://127.0.0.1:9527/");
        assert_eq!((c.requests, c.concurrency, c.threads), (5, 3, 2));
        assert!(c.keep_alive);
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.expect, Expect::Any);
        assert!(args("--json http://127.0.0.1:9527/").unwrap().unwrap().json);
    }

    #[test]
    fn bounds_and_rates() {
        // -d alone: no bound by count.
        let c = config("-d 2.5 http://127.0.0.1:9527/");
        assert_eq!(c.requests, u64::MAX);
        assert_eq!(c.duration, Some(Duration::from_millis(2500)));
        assert_eq!(c.rate, None);
        // Both: whichever comes first.
        let c = config("-n 100 -d 3 http://127.0.0.1:9527/");
        assert_eq!(
            (c.requests, c.duration),
            (100, Some(Duration::from_secs(3)))
        );
        // --rate alone runs for the default time.
        let c = config("--rate 250.5 http://127.0.0.1:9527/");
        assert_eq!(c.rate, Some(250.5));
        assert_eq!((c.requests, c.duration), (u64::MAX, Some(DEFAULT_DURATION)));
        // --rate with -n: that many, however long they take.
        let c = config("--rate 1000 -n 50 -k http://127.0.0.1:9527/");
        assert_eq!((c.requests, c.duration, c.rate), (50, None, Some(1000.0)));
    }

    #[test]
    fn bad_command_lines() {
        for line in [
            "",
            "-n http://127.0.0.1:9527/",
            "-n -1 http://127.0.0.1:9527/",
            "-c 0 http://127.0.0.1:9527/",
            "-d 0 http://127.0.0.1:9527/",
            "-d -1 http://127.0.0.1:9527/",
            "-d soon http://127.0.0.1:9527/",
            "--rate 0 http://127.0.0.1:9527/",
            "--rate -5 http://127.0.0.1:9527/",
            "--rate inf http://127.0.0.1:9527/",
            "--rate NaN http://127.0.0.1:9527/",
            "--rate",
            "-x http://127.0.0.1:9527/",
            "http://127.0.0.1:9527/ http://127.0.0.1:9528/",
        ] {
            assert!(args(line).is_err(), "{line:?}");
        }
        assert!(args("-n 5 --help").unwrap().is_none());
    }

    #[test]
    fn help_names_every_option() {
        // Each option parse() takes starts a line of its own.
        for option in [
            "-n", "-d", "--rate", "-c", "-t", "-k", "-s", "--any", "--json", "-h,",
        ] {
            let documented = USAGE
                .lines()
                .any(|l| l.split_whitespace().next() == Some(option));
            assert!(documented, "{option}");
        }
    }
}
