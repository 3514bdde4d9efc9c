//! A seeded mutation fuzzer, and a differential check of its results.
//!
//! A few well-formed requests (a GET, a POST with a body, a pipelined pair,
//! a chunked body, ...) are mutated at random: bytes flipped, deleted,
//! repeated; pieces of HTTP inserted (line ends, bare and not, headers
//! that frame bodies); requests spliced together. Every listing gets the
//! same inputs, in the same order, each on a connection of its own: the
//! client writes it, shuts down its sending half and reads to the close.
//!
//! Each listing must close every such connection promptly (the client has
//! said all it will say), and answer with nothing but the book's responses,
//! none after one that ends the connection. Then the listings are compared:
//! all the listings that frame requests the same way (those that close
//! after one response, and those that keep connections) must have answered
//! every input with the same sequence of statuses. Afterwards, every
//! listing still serves a plain request exactly, and holds no descriptor,
//! thread or process more than before.
//!
//! `FUZZ_SEED` and `FUZZ_INPUTS` change the run (the defaults are fixed, so
//! that a failure is the same failure every time); a listing stops early
//! if its inputs take longer than `BUDGET`, and the comparison covers what
//! every listing got through, which must be at least `COMPARED` inputs.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::{
    BAD_REQUEST, CONTENT_TOO_LARGE, CONTINUE, GET_CLOSE, LENGTH_REQUIRED, LISTINGS, Listing,
    RESPONSE, RESPONSE_KEEP_ALIVE, TOO_LARGE, back_to, exchange, settled, start, text,
};

/// How many inputs, by default, and from which seed.
const INPUTS: usize = 2000;
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// The longest a listing's run may take; it stops early after that.
const BUDGET: Duration = Duration::from_secs(8);

/// The fewest inputs every listing must get through in its budget for the
/// comparison between listings to mean anything.
const COMPARED: usize = 500;

/// How long a server may keep a connection open after the client has
/// finished sending: it has all there is, so it should need no time.
const PROMPT: Duration = Duration::from_secs(2);

/// The longest input.
const MAX_INPUT: usize = 2048;

/// What the mutations start from.
const SEEDS: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: test\r\n\r\n",
    b"GET /index.html?q=1 HTTP/1.1\r\nHost: test:80\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /api HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
      Content-Length: 13\r\n\r\n{\"a\": [1, 2]}",
    b"PUT /f HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
    b"POST / HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: test\r\n\r\nGET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 30\r\n\r\n\
      GET / HTTP/1.1\r\nHost: test\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 2000000\r\n\r\nthe start",
];

/// Pieces the mutations insert.
const PIECES: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b":",
    b",",
    b"0",
    b"7",
    b"\x00",
    b"\x7f",
    b"\xff",
    b"Host: x\r\n",
    b"Content-Length: 4\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Expect: 100-continue\r\n",
    b"HTTP/1.0",
    b"HTTP/1.1",
    b"\r\n\r\n",
];

/// xorshift64*: a few lines, no dependency, the same numbers everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`, `n` > 0.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a [u8]]) -> &'a [u8] {
        items[self.below(items.len())]
    }
}

/// Up to three mutations of one seed.
fn mutated(rng: &mut Rng) -> Vec<u8> {
    let mut input = rng.pick(SEEDS).to_vec();
    for _ in 0..rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(7) {
            // Flip a bit.
            0 if at < input.len() => input[at] ^= 1 << rng.below(8),
            // Replace a byte with one that means something to HTTP.
            1 if at < input.len() => {
                let piece = rng.pick(&PIECES[..12]);
                input[at] = piece[0];
            }
            // Insert a piece.
            2 => {
                let piece = rng.pick(PIECES);
                input.splice(at..at, piece.iter().copied());
            }
            // Delete a few bytes.
            3 => {
                let end = (at + 1 + rng.below(8)).min(input.len());
                input.drain(at.min(end)..end);
            }
            // Repeat a few bytes.
            4 => {
                let end = (at + 1 + rng.below(16)).min(input.len());
                let copy = input[at.min(end)..end].to_vec();
                input.splice(end..end, copy);
            }
            // Another request after this one.
            5 => input.extend_from_slice(rng.pick(SEEDS)),
            // Cut it short.
            _ => input.truncate(at),
        }
    }
    input.truncate(MAX_INPUT);
    input
}

fn inputs() -> Vec<Vec<u8>> {
    let number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse().ok());
    let seed: u64 = number("FUZZ_SEED").unwrap_or(SEED);
    let count: u64 = number("FUZZ_INPUTS").unwrap_or(INPUTS as u64);
    // A state of 0 would stay 0.
    let mut rng = Rng(seed | 1);
    (0..count).map(|_| mutated(&mut rng)).collect()
}

/// The status of each response a listing sent, in order; or why the
/// answer was wrong.
type Answer = Result<Vec<u16>, String>;

/// Splits what a server sent into the book's responses, and names their
/// statuses. Anything else, or anything after a response that ends the
/// connection, is an error.
fn statuses(mut got: &[u8]) -> Answer {
    let known: [(&[u8], u16, bool); 7] = [
        (RESPONSE_KEEP_ALIVE, 200, false),
        (CONTINUE, 100, false),
        (RESPONSE, 200, true),
        (BAD_REQUEST, 400, true),
        (LENGTH_REQUIRED, 411, true),
        (CONTENT_TOO_LARGE, 413, true),
        (TOO_LARGE, 431, true),
    ];
    let mut statuses = Vec::new();
    while !got.is_empty() {
        let Some(&(response, status, last)) = known.iter().find(|(r, ..)| got.starts_with(r))
        else {
            return Err(format!("not one of the book's responses: {:?}", text(got)));
        };
        statuses.push(status);
        got = &got[response.len()..];
        if last && !got.is_empty() {
            return Err(format!("{:?} after a response that closes", text(got)));
        }
    }
    Ok(statuses)
}

/// Sends one input on a connection of its own, says it has finished, and
/// reads until the server closes.
fn try_input(addr: SocketAddr, input: &[u8]) -> Answer {
    let mut stream =
        TcpStream::connect_timeout(&addr, PROMPT).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(PROMPT)).unwrap();
    stream.set_write_timeout(Some(PROMPT)).unwrap();
    // The server may refuse and close before it has read all of it: a
    // failed write or a reset is its right, and what it sent before is
    // what counts.
    let _ = stream.write_all(input);
    let _ = stream.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "still open {PROMPT:?} after the client finished, having sent {:?}",
                    text(&got)
                ));
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => return Err(format!("{e}, having sent {:?}", text(&got))),
        }
    }
    statuses(&got)
}

/// A listing's answers to the inputs it got through (all, unless it ran
/// out of time), or why it failed afterwards.
type Run = Result<Vec<Answer>, String>;

fn run(l: &Listing, inputs: &[Vec<u8>]) -> Run {
    let server = start(l.name);
    let before = settled(&server);
    let started = Instant::now();
    let mut answers = Vec::with_capacity(inputs.len());
    for input in inputs {
        if started.elapsed() > BUDGET {
            break;
        }
        answers.push(try_input(server.addr(), input));
    }
    let got = exchange(server.addr(), &[GET_CLOSE], Duration::ZERO);
    if got != RESPONSE {
        return Err(format!("afterwards, a plain request got {:?}", text(&got)));
    }
    back_to(&server, &before)?;
    Ok(answers)
}

#[test]
fn mutated_requests_are_answered_alike() {
    let inputs = inputs();
    let only = std::env::var("LISTING").unwrap_or_default();
    let listings: Vec<&'static Listing> = LISTINGS
        .iter()
        .filter(|l| only.is_empty() || only.split(',').any(|name| name.trim() == l.name))
        .filter(|l| !support::skipped(l.name))
        .collect();

    let runs = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for &l in &listings {
            let (runs, inputs) = (&runs, &inputs);
            scope.spawn(move || {
                let run = std::panic::catch_unwind(|| run(l, inputs))
                    .unwrap_or_else(|_| Err("panicked".into()));
                runs.lock().unwrap().push((l, run));
            });
        }
    });
    let mut runs = runs.into_inner().unwrap();
    runs.sort_by_key(|(l, _)| LISTINGS.iter().position(|other| other == *l));

    let mut failures = Vec::new();
    let mut answered = Vec::new();
    for (l, run) in runs {
        match run {
            Ok(answers) => answered.push((l, answers)),
            Err(e) => failures.push(format!("{}: {e}", l.name)),
        }
    }
    let done = answered.iter().map(|(_, a)| a.len()).min().unwrap_or(0);
    println!(
        "{done} of {} inputs through every listing, {} listings",
        inputs.len(),
        answered.len()
    );
    if done < COMPARED.min(inputs.len()) {
        failures.push(format!(
            "only {done} inputs went through every listing in {BUDGET:?}: too few to compare \
             ({COMPARED} at least)"
        ));
    }

    // The inputs reach every answer a short request can get: a fuzzer
    // whose mutations all ended in the same 400 would test little.
    let mut seen = std::collections::BTreeMap::new();
    for (_, answers) in &answered {
        for status in answers.iter().flatten().flatten() {
            *seen.entry(*status).or_insert(0usize) += 1;
        }
    }
    println!("responses by status, all listings: {seen:?}");
    for status in [100, 200, 400, 411, 413] {
        if !seen.contains_key(&status) {
            failures.push(format!("no input was answered with {status}"));
        }
    }

    // Each listing's own answers.
    for (l, answers) in &answered {
        let wrong: Vec<String> = answers
            .iter()
            .zip(&inputs)
            .filter_map(|(answer, input)| {
                answer
                    .as_ref()
                    .err()
                    .map(|e| format!("{:?}: {e}", text(input)))
            })
            .collect();
        if let Some(first) = wrong.first() {
            failures.push(format!(
                "{}: {} wrong answers; first, to {first}",
                l.name,
                wrong.len()
            ));
        }
    }

    // The same answers from every listing of a kind.
    for keep_alive in [false, true] {
        let kind: Vec<_> = answered
            .iter()
            .filter(|(l, _)| l.keep_alive == keep_alive)
            .collect();
        let Some((first, reference)) = kind.first() else {
            continue;
        };
        for (l, answers) in &kind[1..] {
            let differs = (0..done)
                .find(|&i| matches!((&reference[i], &answers[i]), (Ok(a), Ok(b)) if a != b));
            if let Some(i) = differs {
                failures.push(format!(
                    "{} and {} answered {:?} with {:?} and {:?}",
                    first.name,
                    l.name,
                    text(&inputs[i]),
                    reference[i],
                    answers[i]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}
