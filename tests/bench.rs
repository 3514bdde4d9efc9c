//! The benchmark itself: a `--quick` run of every scenario on two listings
//! writes a well-formed results file per scenario and a table for every
//! listing, whatever clients and references the machine has (`ab`, `wrk`,
//! nginx and python3 may be missing: their rows then say so); and the
//! tables and charts are drawn again, unchanged, from the results files
//! alone, and from a committed fixture.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const SCENARIOS: [&str; 11] = [
    "clients", "post", "sweep", "slow", "nginx", "gil", "omission", "idle", "handler", "load",
    "backlog",
];

/// The bench binary, built once in release mode (it builds the listings it
/// runs itself, with the same cargo).
fn bench() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(ROOT)
            .args(["build", "--release", "--quiet", "-p", "bench"])
            .status()
            .expect("could not run cargo build");
        assert!(status.success(), "cargo build --release -p bench failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(ROOT).join("target"));
        let target = if target.is_absolute() {
            target
        } else {
            Path::new(ROOT).join(target)
        };
        target.join("release/bench")
    })
}

/// A fresh directory of this test's own.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bench-test-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn run(args: &[&str]) {
    let output = Command::new(bench()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "bench {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A table row of `server` with `client`, in one cell or two: figures, or
/// "not installed".
fn has_row(table: &str, server: &str, client: &str) -> bool {
    let starts = [
        format!("| {server}, `{client}` | "),
        format!("| {server} | `{client}` | "),
    ];
    table.lines().any(|line| {
        starts.iter().any(|start| {
            line.strip_prefix(start.as_str()).is_some_and(|rest| {
                rest.starts_with("not installed") || rest.starts_with(|c: char| c.is_ascii_digit())
            })
        })
    })
}

/// Every table and chart, by name, with its contents.
fn drawn(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md" || e == "svg"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_quick_run_writes_every_file() {
    let dir = scratch("quick");
    let out = dir.to_str().unwrap();
    run(&[
        "all",
        "--quick",
        "--out",
        out,
        "--only",
        "linear",
        "--only",
        "thread-pool",
    ]);

    for scenario in SCENARIOS {
        let json = read(&dir, &format!("{scenario}.json"));
        assert!(json.starts_with('{') && json.trim_end().ends_with('}'));
        assert!(json.contains(&format!("\"scenario\": \"{scenario}\"")));
        assert!(json.contains("\"machine\"") && json.contains("\"command\""));
        let table = read(&dir, &format!("{scenario}.md"));
        assert!(table.contains("Reproduce with `cargo run --release -p bench -- all --quick"));
    }
    let post = read(&dir, "post.md");
    for server in ["`linear`", "`thread-pool`"] {
        for client in ["ab", "loadgen"] {
            assert!(has_row(&post, server, client), "{server} {client}:\n{post}");
        }
    }
    let linear = read(&dir, "linear.md");
    assert!(has_row(&linear, "`linear`", "loadgen"), "{linear}");
    assert!(!linear.contains("| `thread-pool` |"));
    assert!(has_row(
        &read(&dir, "thread-pool.md"),
        "`thread-pool`",
        "ab"
    ));
    // Every other listing gets its line, measured or not.
    for other in ["prefork", "threads-accept", "epoll", "tokio-tasks"] {
        assert!(read(&dir, &format!("{other}.md")).starts_with("*Not measured yet"));
    }
    // nginx: figures when installed, and never a made-up one when not.
    let nginx = read(&dir, "nginx.md");
    assert!(has_row(&nginx, "close | nginx, 1 worker", "wrk") || nginx.contains("not installed"));
    assert!(has_row(&read(&dir, "gil.md"), "thread-pool, Python", "ab"));
    for svg in [
        "sweep-close.svg",
        "sweep-keep-alive.svg",
        "cpu-per-request.svg",
        "cpu-budget.svg",
        "cpu-batches.svg",
        "slow-p99.svg",
        "omission.svg",
    ] {
        assert!(read(&dir, svg).trim_end().ends_with("</svg>"), "{svg}");
    }
    assert!(read(&dir, "loadgen-report.txt").contains("Requests per second:"));
    // The peers: figures, or a row that says they are not installed.
    let clients = read(&dir, "clients.md");
    for peer in ["oha", "oha -q", "wrk2 -R", "loadgen --rate"] {
        assert!(
            clients.contains(&format!("| `{peer}` | ")),
            "{peer}:\n{clients}"
        );
    }
    assert!(clients.contains("goal in open loop"));
    assert!(read(&dir, "omission.md").contains("The corrected p99 at least"));
    assert!(read(&dir, "cpu.md").contains("`ab`"));
    // The io_uring steps run whatever --only says, with their verdicts.
    let steps = read(&dir, "uring-steps.md");
    assert!(steps.contains("| `uring` batch |"), "{steps}");
    assert!(steps.contains("| `uring` multishot |"), "{steps}");
    assert!(steps.contains("| `uring` direct |"), "{steps}");
    assert!(steps.contains("The goals for `uring`"), "{steps}");
    // accepts: figures where perf may count tracepoints, else a line that
    // says why not.
    let accepts = read(&dir, "accepts.md");
    assert!(
        accepts.contains("| `epoll-prefork`, herd | 1 | ")
            || accepts.starts_with("*Not measured: perf"),
        "{accepts}"
    );
    // The questions: each with its generated reading, and its charts.
    let idle = read(&dir, "idle.md");
    assert!(
        idle.contains("**The reading.**") && idle.contains("RLIMIT_NOFILE"),
        "{idle}"
    );
    assert!(idle.contains("| `epoll` |"), "{idle}");
    let handler = read(&dir, "handler.md");
    for server in ["`linear`", "`thread-pool`"] {
        assert!(
            handler.contains(&format!("- {server} at `/sleep/10`")),
            "{handler}"
        );
    }
    assert!(read(&dir, "load.md").contains("**The knee**"));
    let backlog = read(&dir, "backlog.md");
    assert!(backlog.contains("with a backlog of 128"), "{backlog}");
    for svg in [
        "idle-cpu.svg",
        "idle-p99.svg",
        "handler.svg",
        "load-close.svg",
        "load-keep-alive.svg",
        "backlog.svg",
    ] {
        assert!(read(&dir, svg).trim_end().ends_with("</svg>"), "{svg}");
    }
    assert!(read(&dir, "backlog.json").contains("\"backlog\": 128"));
    // Every run records the kernel's counters, the client's threads and
    // the cores.
    for scenario in SCENARIOS {
        let json = read(&dir, &format!("{scenario}.json"));
        assert!(json.contains("\"kernel\": {"), "{scenario}");
        assert!(json.contains("\"client_threads\": "), "{scenario}");
        assert!(json.contains("\"cores\": "), "{scenario}");
    }
    assert!(read(&dir, "sweep.json").contains("\"calibration\": ["));

    // The results files hold everything the tables and charts show.
    let before = drawn(&dir);
    run(&["render", "--out", out]);
    assert_eq!(drawn(&dir), before);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn the_fixture_is_drawn_whole() {
    let dir = scratch("fixture");
    let fixtures = Path::new(ROOT).join("tools/bench/fixtures");
    for scenario in SCENARIOS {
        let file = format!("{scenario}.json");
        fs::copy(fixtures.join(&file), dir.join(&file)).unwrap();
    }
    run(&["render", "--out", dir.to_str().unwrap()]);
    let close = read(&dir, "sweep-close.svg");
    for label in [
        "linear",
        "thread-pool",
        "clients at once",
        "requests per second",
    ] {
        assert!(close.contains(label), "no {label} in\n{close}");
    }
    assert!(close.matches("<polyline").count() >= 2);
    let slow = read(&dir, "slow-p99.svg");
    assert!(slow.contains("logarithmic") && slow.contains("silent client"));
    assert!(read(&dir, "cpu-per-request.svg").contains("µs"));
    let _ = fs::remove_dir_all(&dir);
}
