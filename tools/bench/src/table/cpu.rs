//! The whole CPU budget, in words computed from the data: what the client
//! costs per request beside the server, how much of the machine the two
//! took together, and how the server's CPU per request moved with the
//! client and with the number of clients. The charts beside it are drawn
//! by `render`.

use std::fmt::Write;

use crate::format::{count, micros, times};
use crate::results::{Mode, Results};
use crate::stats::{Stats, cell};

/// The server whose CPU per request the sweep's sentence follows, and the
/// levels it compares.
pub const BATCH_SERVER: &str = "epoll";
const FEW: usize = 1;
const MANY: usize = 64;

/// Share of the cores' time client and server took together: their CPU
/// per request against the cores' time per request at the rate reached.
pub fn busy(s: &Stats, cores: usize) -> f64 {
    (s.client_cpu + s.server_cpu) * s.rate / cores as f64
}

/// The cores the runs had: from the runs, or the machine.
pub fn cores(results: &Results) -> usize {
    results
        .samples
        .iter()
        .find_map(|s| s.cores)
        .unwrap_or(results.machine.cores)
        .max(1)
}

/// The findings, as a list.
pub fn cpu(post: Option<&Results>, sweep: Option<&Results>) -> String {
    let mut out = String::new();
    if let Some(post) = post {
        let cores = cores(post);
        let rows: Vec<(&str, Option<Stats>, Option<Stats>)> = post
            .measured()
            .into_iter()
            .map(|s| {
                let get = |client| cell(post, s, client, Mode::Close, 8, None).stats().cloned();
                (s, get("ab"), get("loadgen"))
            })
            .collect();
        let ab: Vec<&Stats> = rows.iter().filter_map(|r| r.1.as_ref()).collect();
        let lg: Vec<&Stats> = rows.iter().filter_map(|r| r.2.as_ref()).collect();
        let span = |v: Vec<f64>, f: fn(f64) -> String| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            if lo == hi {
                f(lo)
            } else {
                format!("{} to {}", f(lo), f(hi))
            }
        };
        if !ab.is_empty() {
            let cpu: Vec<f64> = ab.iter().map(|s| s.client_cpu).collect();
            let typical = crate::stats::median(cpu.clone());
            let _ = writeln!(
                out,
                "- **`ab` is one thread that spent {} of CPU a request** on the post's \
                 benchmark, whatever the server: at {} a request, one thread kept busy \
                 all the time makes about {} requests a second, and `ab` reached {} \
                 against every model.",
                span(cpu, micros),
                micros(typical),
                count(1.0 / typical),
                span(ab.iter().map(|s| s.rate).collect(), count),
            );
        }
        if !lg.is_empty() {
            let _ = writeln!(
                out,
                "- **Client and server together** took {} of the {cores} cores' time \
                 with the load generator, {} with `ab`: CPU per request, client's plus \
                 server's, times the rate, over the cores.",
                span(lg.iter().map(|s| busy(s, cores)).collect(), percent),
                span(ab.iter().map(|s| busy(s, cores)).collect(), percent),
            );
        }
        // The server's CPU per request with each client.
        let ratios: Vec<(&str, f64, f64)> = rows
            .iter()
            .filter_map(|(s, a, l)| Some((*s, a.as_ref()?.server_cpu, l.as_ref()?.server_cpu)))
            .collect();
        if let Some((server, a, l)) = ratios
            .iter()
            .copied()
            .max_by(|x, y| (x.1 / x.2).total_cmp(&(y.1 / y.2)))
        {
            let more = ratios.iter().filter(|(_, a, l)| a / l >= 1.1).count();
            let head = if more > 0 {
                "The server's CPU per request depended on the client."
            } else {
                "The server's CPU per request hardly depended on the client in this run."
            };
            let _ = writeln!(
                out,
                "- **{head}** With `ab`, {more} of {} models spent at least 1.10× the CPU \
                 per request they spent with the load generator; the most, `{server}`: {} \
                 with `ab`, {} with the load generator ({}).",
                ratios.len(),
                micros(a),
                micros(l),
                times(a / l)
            );
        }
    }
    if let Some(sweep) = sweep {
        let at = |server: &str, c: usize| {
            cell(sweep, server, "loadgen", Mode::Close, c, None)
                .stats()
                .cloned()
        };
        let levels = &sweep.params.concurrency;
        let few = levels.first().copied().unwrap_or(FEW);
        let many = if levels.contains(&MANY) {
            MANY
        } else {
            levels.last().copied().unwrap_or(MANY)
        };
        let pairs: Vec<(&str, f64, f64)> = sweep
            .measured()
            .into_iter()
            .filter_map(|s| Some((s, at(s, few)?.server_cpu, at(s, many)?.server_cpu)))
            .collect();
        if let Some(&(server, cpu_few, cpu_many)) =
            pairs.iter().find(|p| p.0 == BATCH_SERVER).or(pairs.first())
        {
            let fell = pairs.iter().filter(|(_, f, m)| m < &(f * 0.9)).count();
            let head = if fell * 2 > pairs.len() {
                "It fell as more clients were served at once."
            } else {
                "It did not fall for most servers as more clients were served at once."
            };
            let _ = writeln!(
                out,
                "- **{head}** In the sweep, with a new connection per request, \
                 `{server}` spent {} a request with {} and {} with {many} \
                 ({}); {fell} of {} servers spent at least 10% less per request with \
                 {many} clients than with {few}.",
                micros(cpu_few),
                if few == 1 {
                    "1 client".to_string()
                } else {
                    format!("{few} clients")
                },
                micros(cpu_many),
                times(cpu_many / cpu_few),
                pairs.len(),
            );
        }
    }
    if out.is_empty() {
        out = "*Not measured yet: run `cargo run --release -p bench -- all`.*\n".into();
    }
    out
}

/// 0.734 -> "73%"
pub fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{:.0}%", share * 100.0)
    } else {
        "—".into()
    }
}
