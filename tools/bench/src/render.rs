//! From results files to what the chapters include: for every scenario its
//! Markdown table (`NAME.md`), the charts, the load generator's report, and
//! a file per listing (`LISTING.md`) with its rows of the post's benchmark.
//! Reads only the JSON files in the output directory, so that the tables
//! and charts can be drawn again (`bench render`) without measuring.

use std::fs;
use std::path::Path;

use crate::chart::{self, Series, Stack};
use crate::format::{count, latency, micros};
use crate::results::{Mode, Results, Scenario, Status};
use crate::servers;
use crate::stats::{Stats, cell};
use crate::table;

/// Writes `contents` to `path`, saying so on stderr.
pub fn write(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("writing {}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// A scenario's results, if its file is there.
fn read(dir: &Path, scenario: Scenario) -> Result<Option<Results>, String> {
    let path = dir.join(format!("{scenario}.json"));
    match fs::read_to_string(&path) {
        Ok(text) => Results::from_json(&text)
            .map(Some)
            .map_err(|e| format!("reading {}: {e}", path.display())),
        Err(_) => Ok(None),
    }
}

/// Every table, chart and listing file from the results files in `dir`.
/// A scenario with no results file gets a placeholder, so that the book's
/// includes always find something.
pub fn all(dir: &Path) -> Result<(), String> {
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for scenario in Scenario::ALL {
        let results = read(dir, scenario)?;
        let text = match &results {
            None => format!(
                "*Not measured yet: run `cargo run --release -p bench -- {scenario}` \
                 (or `-- all`).*\n"
            ),
            Some(r) => table::scenario(scenario, r),
        };
        write(&dir.join(format!("{scenario}.md")), &text)?;
        // What else each scenario draws.
        match scenario {
            Scenario::Clients => {
                let report = results
                    .as_ref()
                    .and_then(|r| r.loadgen_report.clone())
                    .unwrap_or_else(|| {
                        "Not measured yet: run `cargo run --release -p bench -- clients`.\n".into()
                    });
                write(&dir.join("loadgen-report.txt"), &report)?;
                // The keep-alive half, for Results (after keep-alive is
                // explained); `clients.md` has the other.
                let keep_alive = match &results {
                    Some(r) => table::clients_keep_alive(r),
                    None => "*Not measured yet: run `cargo run --release -p bench -- clients` \
                             (or `-- all`).*\n"
                        .into(),
                };
                write(&dir.join("clients-keep-alive.md"), &keep_alive)?;
            }
            Scenario::Post => {
                write(
                    &dir.join("cpu-per-request.svg"),
                    &cpu_chart(results.as_ref()),
                )?;
                write(&dir.join("cpu-budget.svg"), &budget_chart(results.as_ref()))?;
                listings(dir, results.as_ref())?;
            }
            Scenario::Sweep => {
                for mode in Mode::BOTH {
                    write(
                        &dir.join(format!("sweep-{}.svg", mode.name())),
                        &sweep_chart(results.as_ref(), mode),
                    )?;
                }
                write(
                    &dir.join("cpu-batches.svg"),
                    &batches_chart(results.as_ref()),
                )?;
            }
            Scenario::Slow => write(&dir.join("slow-p99.svg"), &slow_chart(results.as_ref()))?,
            Scenario::Omission => {
                write(&dir.join("omission.svg"), &omission_chart(results.as_ref()))?;
            }
            Scenario::Nginx | Scenario::Gil | Scenario::UringSteps => {}
            Scenario::Idle => {
                write(
                    &dir.join("idle-cpu.svg"),
                    &idle_chart(results.as_ref(), false),
                )?;
                write(
                    &dir.join("idle-p99.svg"),
                    &idle_chart(results.as_ref(), true),
                )?;
            }
            Scenario::Handler => {
                write(&dir.join("handler.svg"), &handler_chart(results.as_ref()))?;
                // The rows the chapters on handing work off show.
                let hand_off = match &results {
                    Some(r) => table::questions::hand_off(r),
                    None => "*Not measured yet: run `cargo run --release -p bench -- handler` \
                             (or `-- all`).*\n"
                        .into(),
                };
                write(&dir.join("handler-hand-off.md"), &hand_off)?;
            }
            Scenario::Load => {
                for mode in Mode::BOTH {
                    write(
                        &dir.join(format!("load-{}.svg", mode.name())),
                        &load_chart(results.as_ref(), mode),
                    )?;
                }
            }
            Scenario::Backlog => {
                write(&dir.join("backlog.svg"), &backlog_chart(results.as_ref()))?;
            }
        }
    }
    crate::accepts::render(dir)?;
    write(&dir.join("duration.md"), &duration(dir)?)?;
    // The whole CPU budget, in words: from the post and the sweep.
    let (post, sweep) = (read(dir, Scenario::Post)?, read(dir, Scenario::Sweep)?);
    write(
        &dir.join("cpu.md"),
        &table::cpu(post.as_ref(), sweep.as_ref()),
    )?;
    // The page with every model: from three scenarios at once.
    let models = match (
        read(dir, Scenario::Post)?,
        read(dir, Scenario::Sweep)?,
        read(dir, Scenario::Slow)?,
    ) {
        (Some(post), Some(sweep), Some(slow)) => table::models(&post, &sweep, &slow),
        _ => "*Not measured yet: run `cargo run --release -p bench -- all`.*\n".into(),
    };
    write(&dir.join("models.md"), &models)?;
    // The same page's recommendations, cited from the four questions.
    let questions = table::models_questions(
        read(dir, Scenario::Idle)?.as_ref(),
        read(dir, Scenario::Handler)?.as_ref(),
        read(dir, Scenario::Load)?.as_ref(),
    );
    write(&dir.join("models-questions.md"), &questions)
}

/// How long each scenario of the committed run took, and all of them.
fn duration(dir: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    let mut total = 0.0;
    for scenario in Scenario::ALL {
        if let Some(secs) = read(dir, scenario)?.and_then(|r| r.seconds) {
            parts.push((scenario.to_string(), secs));
            total += secs;
        }
    }
    if let Some(secs) = crate::accepts::seconds(dir) {
        parts.push(("accepts".into(), secs));
        total += secs;
    }
    if parts.is_empty() {
        return Ok(
            "*How long the run took is not on record: the results files \
                   predate it.*\n"
                .into(),
        );
    }
    let minutes = |s: f64| {
        let s = s.round() as u64;
        format!("{}:{:02}", s / 60, s % 60)
    };
    let each: Vec<String> = parts
        .iter()
        .map(|(name, s)| format!("`{name}` {}", minutes(*s)))
        .collect();
    Ok(format!(
        "The scenarios of the run in these pages took {} (minutes:seconds) in all, \
         building apart: {}.\n",
        minutes(total),
        each.join(", ")
    ))
}

/// A file per listing, for its chapter. A listing this run did not select
/// (`--only`) keeps the file it had.
fn listings(dir: &Path, post: Option<&Results>) -> Result<(), String> {
    for spec in servers::LISTINGS.iter() {
        if testbed::listing(spec.name).measuring_stick {
            continue; // not in the post's benchmark
        }
        let path = dir.join(format!("{}.md", spec.name));
        let entry = post.and_then(|r| r.server(spec.name));
        let text = match (post, entry) {
            (Some(r), Some(e)) if e.status == Status::Measured => table::listing(r, spec.name),
            (_, Some(_)) => table::not_measured(
                spec.name,
                "this listing was not in the workspace of the last run.",
            ),
            _ if path.is_file() => continue,
            _ => table::not_measured(spec.name, "the last run did not include this listing."),
        };
        write(&path, &text)?;
    }
    Ok(())
}

fn rate(v: f64) -> String {
    count(v)
}

fn cpu_chart(post: Option<&Results>) -> String {
    let title = "Server CPU time per request (post's benchmark, median)";
    let Some(r) = post else {
        return chart::empty(
            title,
            "Not measured yet: cargo run --release -p bench -- post",
        );
    };
    let servers = r.measured();
    let series: Vec<Series> = ["loadgen", "ab"]
        .iter()
        .map(|client| Series {
            name: format!("with {client}, 8 clients, a new connection each"),
            values: servers
                .iter()
                .map(|s| {
                    cell(r, s, client, Mode::Close, 8, None)
                        .stats()
                        .map(|st| st.server_cpu * 1e6)
                })
                .collect(),
        })
        .collect();
    let names: Vec<String> = servers.iter().map(|s| servers::label(s)).collect();
    chart::bars(
        title,
        "microseconds of CPU per request",
        &names,
        &series,
        false,
        |v| micros(v / 1e6),
    )
}

/// What the cores' time per request went to, per model, on the post's
/// benchmark: the server's CPU and the client's, stacked, with `ab` and
/// with the load generator, and a mark at the cores' time per request at
/// the rate reached (all the CPU the machine had to give each request).
fn budget_chart(post: Option<&Results>) -> String {
    let title = "The whole CPU budget per request (post's benchmark, median)";
    let Some(r) = post else {
        return chart::empty(
            title,
            "Not measured yet: cargo run --release -p bench -- post",
        );
    };
    let cores = table::cores(r);
    let mut rows = Vec::new();
    for s in r.measured() {
        for client in ["ab", "loadgen"] {
            let stats = cell(r, s, client, Mode::Close, 8, None).stats().cloned();
            rows.push(budget_row(
                format!("{}, {client}", servers::label(s)),
                stats.as_ref(),
                cores,
            ));
        }
    }
    chart::stacked(
        title,
        "microseconds of CPU per request",
        &["server CPU per request", "client CPU per request"],
        &format!("the {cores} cores' time per request at the rate reached"),
        &rows,
        |v| micros(v / 1e6),
    )
}

/// A row of a budget chart, in microseconds.
fn budget_row(label: String, stats: Option<&Stats>, cores: usize) -> Stack {
    Stack {
        label,
        parts: vec![
            stats.map(|s| s.server_cpu * 1e6),
            stats.map(|s| s.client_cpu * 1e6),
        ],
        mark: stats.map(|s| cores as f64 / s.rate * 1e6),
    }
}

/// The same budget for one server over the sweep's levels, both modes:
/// how CPU per request falls as each wake-up finds more work.
fn batches_chart(sweep: Option<&Results>) -> String {
    let Some(r) = sweep else {
        return chart::empty(
            "CPU per request against clients at once",
            "Not measured yet: cargo run --release -p bench -- sweep",
        );
    };
    // The book's event loop, or the first server measured.
    let listed = r.measured();
    let Some(server) = listed
        .iter()
        .copied()
        .find(|s| *s == table::BATCH_SERVER)
        .or(listed.first().copied())
    else {
        return chart::empty(
            "CPU per request against clients at once",
            "No server was measured",
        );
    };
    let title = format!("CPU per request against clients at once ({server}, median)");
    let cores = table::cores(r);
    let keeps_alive = r.server(server).is_some_and(|s| s.keep_alive);
    let mut rows = Vec::new();
    for mode in Mode::BOTH
        .into_iter()
        .filter(|&m| m == Mode::Close || keeps_alive)
    {
        for &c in &r.params.concurrency {
            let stats = cell(r, server, "loadgen", mode, c, None).stats().cloned();
            rows.push(budget_row(
                format!("{}, {c}", mode.name()),
                stats.as_ref(),
                cores,
            ));
        }
    }
    chart::stacked(
        &title,
        "microseconds of CPU per request",
        &["server CPU per request", "client CPU per request"],
        &format!("the {cores} cores' time per request at the rate reached"),
        &rows,
        |v| micros(v / 1e6),
    )
}

/// Coordinated omission: the run's percentiles from the send and from when
/// each request was due, on a logarithmic axis.
fn omission_chart(omission: Option<&Results>) -> String {
    let title = "A second's pause, from the send and from when due";
    let Some(r) = omission else {
        return chart::empty(
            title,
            "Not measured yet: cargo run --release -p bench -- omission",
        );
    };
    let runs = table::omission_runs(r);
    let series: Vec<Series> = table::OMISSION_ROWS[..2]
        .iter()
        .zip(["from the send", "from when due"])
        .map(|((_, row), name)| Series {
            name: name.to_string(),
            values: table::omission_medians(&runs, *row)
                .map_or(vec![None; 5], |v| v.map(Some).to_vec()),
        })
        .collect();
    let xs: Vec<String> = table::OMISSION_PERCENTILES
        .iter()
        .map(|p| p.to_string())
        .collect();
    chart::lines_log(
        title,
        "percentile of the run's requests (median over the rounds)",
        "latency",
        &xs,
        &series,
        |v| latency(Some(v)),
    )
}

fn sweep_chart(sweep: Option<&Results>, mode: Mode) -> String {
    let title = match mode {
        Mode::Close => "Requests per second against clients at once (a new connection per request)",
        Mode::KeepAlive => "Requests per second against clients at once (keep-alive)",
    };
    let Some(r) = sweep else {
        return chart::empty(
            title,
            "Not measured yet: cargo run --release -p bench -- sweep",
        );
    };
    let levels = &r.params.concurrency;
    let measured: Vec<_> = r
        .servers
        .iter()
        .filter(|s| s.status == Status::Measured && (mode == Mode::Close || s.keep_alive))
        .collect();
    let names: Vec<&str> = measured.iter().map(|s| s.name.as_str()).collect();
    let series: Vec<Series> = measured
        .iter()
        .map(|s| {
            let cells: Vec<_> = levels
                .iter()
                .map(|&c| cell(r, &s.name, "loadgen", mode, c, None))
                .collect();
            // Say so when a server asked for keep-alive closed anyway.
            let closed = cells.iter().any(|c| c.stats().is_some_and(|st| st.closed));
            Series {
                name: servers::label(&s.name) + if closed { " (closed each)" } else { "" },
                values: cells.iter().map(|c| c.stats().map(|st| st.rate)).collect(),
            }
        })
        .collect();
    if series.is_empty() {
        return chart::empty(title, "No server was measured in this mode");
    }
    // Small multiples: a panel per family of models, nginx with readiness.
    let families: Vec<(testbed::Family, Vec<Series>)> = testbed::Family::ALL
        .into_iter()
        .map(|family| {
            let mine = series
                .iter()
                .zip(&names)
                .filter(|(_, name)| servers::family(name) == family)
                .map(|(s, _)| Series {
                    name: s.name.clone(),
                    values: s.values.clone(),
                })
                .collect();
            (family, mine)
        })
        .collect();
    let panels: Vec<chart::Panel> = families
        .iter()
        .map(|(family, series)| chart::Panel {
            title: family.name(),
            series,
        })
        .collect();
    let xs: Vec<String> = levels.iter().map(|c| c.to_string()).collect();
    chart::panels(
        title,
        "clients at once",
        "requests per second (median)",
        &xs,
        &panels,
        rate,
        false,
    )
}

fn slow_chart(slow: Option<&Results>) -> String {
    let title = "Normal clients' p99 latency beside slow clients";
    let Some(r) = slow else {
        return chart::empty(
            title,
            "Not measured yet: cargo run --release -p bench -- slow",
        );
    };
    let servers = r.measured();
    let series: Vec<Series> = r
        .params
        .slow
        .iter()
        .map(|case| Series {
            name: case.to_string(),
            values: servers
                .iter()
                .map(|s| {
                    cell(r, s, "loadgen", Mode::Close, 8, Some(*case))
                        .stats()
                        .and_then(|st| st.p99)
                })
                .collect(),
        })
        .collect();
    let names: Vec<String> = servers.iter().map(|s| servers::label(s)).collect();
    chart::bars(
        title,
        "p99 latency of the normal clients",
        &names,
        &series,
        true,
        |v| latency(Some(v)),
    )
}

/// What idle connections cost: server CPU per request, or the p99 from
/// when each request was due, against idle connections held open.
fn idle_chart(idle: Option<&Results>, p99: bool) -> String {
    use table::questions::{corrected_p99, idle_runs, median_of};
    let title = if p99 {
        "p99 latency of a fixed load beside idle connections"
    } else {
        "Server CPU per request of a fixed load beside idle connections"
    };
    let Some(r) = idle else {
        return chart::empty(
            title,
            "Not measured yet: cargo run --release -p bench -- idle",
        );
    };
    let levels = &r.params.idle;
    let series: Vec<Series> = r
        .measured()
        .into_iter()
        .map(|s| Series {
            name: servers::label(s),
            values: levels
                .iter()
                .map(|&n| {
                    let runs = idle_runs(r, s, n);
                    if p99 {
                        median_of(&runs, corrected_p99)
                    } else {
                        median_of(&runs, |x| Some(x.server_cpu_per_request() * 1e6))
                    }
                })
                .collect(),
        })
        .collect();
    let xs: Vec<String> = levels.iter().map(|&n| count(n as f64)).collect();
    let x_label = "idle keep-alive connections held open (categories, not to scale)";
    if p99 {
        chart::lines_log(
            title,
            x_label,
            "p99 from when due (median)",
            &xs,
            &series,
            |v| latency(Some(v)),
        )
    } else {
        chart::lines_log(
            title,
            x_label,
            "microseconds of server CPU per request (median)",
            &xs,
            &series,
            |v| micros(v / 1e6),
        )
    }
}

/// What a slow handler does: requests per second of every listing at each
/// target.
fn handler_chart(handler: Option<&Results>) -> String {
    use table::questions::handler_cell;
    let title = "Requests per second with a slow handler";
    let Some(r) = handler else {
        return chart::empty(
            title,
            "Not measured yet: cargo run --release -p bench -- handler",
        );
    };
    let servers = r.measured();
    let series: Vec<Series> = r
        .params
        .paths
        .iter()
        .map(|path| Series {
            name: format!("GET {path}"),
            values: servers
                .iter()
                .map(|s| handler_cell(r, s, path).stats().map(|st| st.rate))
                .collect(),
        })
        .collect();
    let names: Vec<String> = servers.iter().map(|s| servers::label(s)).collect();
    chart::bars(
        title,
        "requests per second (median)",
        &names,
        &series,
        true,
        rate,
    )
}

/// The hockey stick: p99 from when due against the rate asked, as a share
/// of each server's closed-loop maximum.
fn load_chart(load: Option<&Results>, mode: Mode) -> String {
    use table::questions::load_p99;
    let title = match mode {
        Mode::Close => "p99 latency against the rate asked (a new connection per request)",
        Mode::KeepAlive => "p99 latency against the rate asked (keep-alive)",
    };
    let Some(r) = load else {
        return chart::empty(
            title,
            "Not measured yet: cargo run --release -p bench -- load",
        );
    };
    let shares = &r.params.shares;
    let series: Vec<Series> = r
        .measured()
        .into_iter()
        .filter(|s| mode == Mode::Close || r.server(s).is_some_and(|e| e.keep_alive))
        .map(|s| Series {
            name: servers::label(s),
            values: shares.iter().map(|&sh| load_p99(r, s, mode, sh)).collect(),
        })
        .collect();
    if series.is_empty() {
        return chart::empty(title, "No server was measured in this mode");
    }
    let xs: Vec<String> = shares
        .iter()
        .map(|s| format!("{:.0}%", s * 100.0))
        .collect();
    chart::lines_log(
        title,
        "rate asked, as a share of the server's closed-loop maximum (not to scale)",
        "p99 from when due (median)",
        &xs,
        &series,
        |v| latency(Some(v)),
    )
}

/// The one-second cliff: the longest request of each case, by backlog.
fn backlog_chart(backlog: Option<&Results>) -> String {
    use table::questions::backlog_cell;
    let title = "The longest request, by listen backlog";
    let Some(r) = backlog else {
        return chart::empty(
            title,
            "Not measured yet: cargo run --release -p bench -- backlog",
        );
    };
    let mut names = Vec::new();
    let mut cases = Vec::new();
    for s in r.measured() {
        for &c in &r.params.concurrency {
            names.push(format!(
                "{}, {} clients",
                servers::label(s),
                count(c as f64)
            ));
            cases.push((s, c));
        }
    }
    let series: Vec<Series> = r
        .params
        .backlogs
        .iter()
        .map(|&b| Series {
            name: format!("backlog {}", count(b as f64)),
            values: cases
                .iter()
                .map(|&(s, c)| backlog_cell(r, s, b, c).stats().and_then(|st| st.max))
                .collect(),
        })
        .collect();
    chart::bars(
        title,
        "longest request of the run (median over the rounds)",
        &names,
        &series,
        true,
        |v| latency(Some(v)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A committed run of `bench all --quick --only linear --only
    /// thread-pool`, drawn again: the tables and charts must come out
    /// whole, with every server the files name.
    #[test]
    fn draws_the_fixture() {
        let fixtures = testbed::workspace().join("tools/bench/fixtures");
        let dir = std::env::temp_dir().join(format!("bench-render-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for scenario in Scenario::ALL {
            let from = fixtures.join(format!("{scenario}.json"));
            fs::copy(&from, dir.join(format!("{scenario}.json")))
                .unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        }
        all(&dir).unwrap();
        let file = |name: &str| fs::read_to_string(dir.join(name)).unwrap();

        let close = file("sweep-close.svg");
        assert!(close.starts_with("<svg") && close.trim_end().ends_with("</svg>"));
        for label in ["linear", "thread-pool", "clients at once"] {
            assert!(close.contains(label), "no {label} in the sweep chart");
        }
        assert!(close.matches("<polyline").count() >= 2);
        // Small multiples by family, on a logarithmic axis of clients.
        assert!(close.contains("\nblocking\n</text>") && close.contains("logarithmic scale"));
        assert!(file("sweep-keep-alive.svg").contains("thread-pool"));
        let cpu = file("cpu-per-request.svg");
        assert!(cpu.contains("<rect") && cpu.contains("µs"));
        let slow = file("slow-p99.svg");
        assert!(slow.contains("logarithmic") && slow.contains("silent client"));
        for svg in ["sweep-close.svg", "cpu-per-request.svg", "slow-p99.svg"] {
            let text = file(svg);
            assert_eq!(text.matches("<svg").count(), 1);
            assert_eq!(
                text.matches("<text").count(),
                text.matches("</text>").count(),
                "{svg}"
            );
        }

        assert!(file("linear.md").contains("| `linear`, `loadgen` |"));
        assert!(file("epoll.md").starts_with("*Not measured yet"));
        assert!(file("post.md").contains("| `thread-pool`, `ab` |"));
        assert!(file("nginx.md").contains("The goals for `epoll`"));
        assert!(file("gil.md").contains("| thread-pool, Python |"));
        // What the runs record besides the rates.
        assert!(file("sweep.md").contains("The load generator's threads"));
        assert!(file("post.md").contains("Threads of each client: `ab` 1"));
        assert!(file("post.md").contains("The kernel's TCP counters"));
        let omission = file("omission.md");
        assert!(
            omission.contains("| From when due (corrected) |"),
            "{omission}"
        );
        assert!(omission.contains("The corrected p99 at least"));
        assert!(file("omission.svg").contains("logarithmic"));
        assert!(file("clients.md").contains("| `loadgen --rate` |"));
        for svg in ["cpu-budget.svg", "cpu-batches.svg"] {
            let text = file(svg);
            assert!(text.contains("client CPU per request"), "{svg}");
            assert_eq!(
                text.matches("<text").count(),
                text.matches("</text>").count()
            );
        }
        assert!(file("cpu.md").contains("`ab` is one thread"));
        let _ = fs::remove_dir_all(&dir);
    }

    /// Results files from before the kernel's counters and the rest draw
    /// as they did, without the lines those would add.
    #[test]
    fn draws_files_without_the_new_fields() {
        let fixtures = testbed::workspace().join("tools/bench/fixtures/v1");
        let dir = std::env::temp_dir().join(format!("bench-render-v1-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for entry in fs::read_dir(&fixtures).unwrap() {
            let path = entry.unwrap().path();
            fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        all(&dir).unwrap();
        let file = |name: &str| fs::read_to_string(dir.join(name)).unwrap();
        assert!(file("post.md").contains("| `thread-pool`, `ab` |"));
        assert!(!file("post.md").contains("kernel's TCP counters"));
        assert!(!file("sweep.md").contains("Threads of each client"));
        assert!(file("omission.md").starts_with("*Not measured yet"));
        assert!(file("cpu-budget.svg").contains("client CPU per request"));
        assert!(file("sweep-close.svg").contains("nginx, 1 worker"));
        let _ = fs::remove_dir_all(&dir);
    }
}
