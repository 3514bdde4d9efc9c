//! The book as a reader's browser shows it.
//!
//! `tests/book.rs` checks what mdBook writes; this file opens it. It renders
//! the book with mdBook's library, loads every chapter in headless Chromium
//! in a window 1280 px wide, and checks on every page that:
//!
//! - nothing is wider than the text column: no table, no code block, no
//!   image (one drawn smaller than its own width counts), and nothing else
//!   that sticks out of the column or makes the page scroll sideways;
//! - every image loaded (the SVG charts included), every file the page
//!   asked for was there, and no script threw an error;
//! - no `{{#` directive was left unexpanded;
//! - every link inside the book leads to a page that exists and, if it
//!   names an anchor, to an element with that id.
//!
//! Then it searches the book as a reader does, in mdBook's search box:
//! every glossary term must find its entry in the glossary, and every
//! chapter's title its chapter. A screenshot of every chapter, the whole
//! page at 1280 px, is written to the directory the test names (run
//! `cargo test --test browser -- --nocapture` to see it).
//!
//! A second test starts `mdbook serve` as the README does, checks the page
//! it serves the same way, and checks that it is the page the book renders.
//!
//! Chromium is driven through its DevTools protocol over a pipe, as its own
//! tools do, so that a browser started once serves many pages (two of them
//! share the chapters, side by side). Where there is no
//! Chromium, or no `mdbook` for the second test, a test prints `skipped:`
//! and why, and passes; `.ci/run` installs Chromium where it can.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use mdbook_driver::MDBook;
use mdbook_driver::book::BookItem;
use serde_json::{Value, json};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The reader's window.
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 900;

/// The page that defines the book's terms, one `##` heading each.
const GLOSSARY: &str = "glossary.html";

/// The longest any one step in the browser may take (loading a page,
/// measuring it, taking its picture), on a slow machine under load.
const STEP: Duration = Duration::from_secs(90);

/// What is known to be wider than the column, and is being fixed
/// elsewhere: page, kind, and what, exactly as a failure names them. Each
/// is reported as known instead of failing the test, and the list tightens
/// itself: the test fails when one of them fits, so that it leaves the list.
const KNOWN_TOO_WIDE: &[(&str, &str, &str)] = &[];

#[test]
fn every_chapter_reads_well_in_a_browser() {
    let Some(chromium) = chromium() else {
        println!("skipped: {}", no_chromium());
        return;
    };
    let started = Instant::now();
    let work = fresh_dir("browser");
    let html = render(&work.join("book"));
    let chapters = chapters();
    let shots = screenshot_dir();

    let (mut browser, tab, pages) = open_every_chapter(&chromium, &work, &html, &chapters, &shots);
    let mut problems = Vec::new();
    let mut known = BTreeSet::new();
    for chapter in &chapters {
        let found = pages[&chapter.page].problems(chapter.escaped_directives);
        problems.extend(unknown(&chapter.page, found, &mut known));
    }

    let mut links = 0;
    for (name, page) in &pages {
        links += page.links.len();
        for link in &page.links {
            if let Some(why) = broken(&html, &pages, link) {
                problems.push(format!("{name}: link {}: {why}", link.href));
            }
        }
    }

    // Search, as a reader does: the glossary's terms, the chapters' titles.
    let glossary = pages
        .get(GLOSSARY)
        .unwrap_or_else(|| panic!("no chapter renders to {GLOSSARY}"));
    let mut queries: Vec<(String, String, String)> = glossary
        .headings
        .iter()
        .filter(|h| h.level == 2)
        .map(|h| (h.text.clone(), GLOSSARY.to_string(), h.id.clone()))
        .collect();
    assert!(
        queries.len() >= 20,
        "{GLOSSARY} defines {} terms",
        queries.len()
    );
    for chapter in &chapters {
        let title = &pages[&chapter.page].title;
        queries.push((title.clone(), chapter.page.clone(), String::new()));
    }
    let terms: Vec<&str> = queries.iter().map(|(q, _, _)| q.as_str()).collect();
    let found = browser.search(&tab, &file_url(&html.join(GLOSSARY)), &terms);
    for (query, page, id) in &queries {
        let results = &found[query];
        let hit = results
            .iter()
            .any(|r| r.path_in(&html) == Some(page.as_str()) && (id.is_empty() || r.hash == *id));
        if !hit {
            let want = if id.is_empty() {
                page.clone()
            } else {
                format!("{page}#{id}")
            };
            problems.push(format!(
                "searching for {query:?} does not find {want} among its {} results",
                results.len()
            ));
        }
    }

    // The list of known failures tightens itself.
    for entry @ (page, kind, what) in KNOWN_TOO_WIDE {
        if !known.contains(&entry) {
            problems.push(format!(
                "{page}: {kind} `{what}` fits the column now (or has changed): \
                 take it off KNOWN_TOO_WIDE"
            ));
        }
    }
    browser.close();
    println!(
        "{} chapters at {WIDTH} px, {links} links, {} searches, in {:.1} s; \
         {} known too wide (KNOWN_TOO_WIDE); screenshots in {}",
        chapters.len(),
        queries.len(),
        started.elapsed().as_secs_f64(),
        known.len(),
        shots.display()
    );
    assert!(
        problems.is_empty(),
        "the book rendered in {}, at {WIDTH} px:\n{}",
        html.display(),
        problems.join("\n")
    );
    fs::remove_dir_all(&work).unwrap();
}

#[test]
fn mdbook_serve_serves_the_rendered_book() {
    let Some(chromium) = chromium() else {
        println!("skipped: {}", no_chromium());
        return;
    };
    let mdbook = match mdbook() {
        Ok(mdbook) => mdbook,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let work = fresh_dir("serve");
    let html = render(&work.join("book"));
    let mut server = Serve::start(&mdbook, &work);
    let mut browser = Browser::launch(&chromium, &work);
    let tab = browser.open_tab();

    // The book's front page is its first chapter again.
    let first = &chapters()[0];
    let served = browser.measure(&tab, &server.url, true);
    let built = browser.measure(&tab, &file_url(&html.join("index.html")), true);
    let found = served.problems(first.escaped_directives);
    let problems = unknown(&first.page, found, &mut BTreeSet::new());
    assert!(
        problems.is_empty(),
        "the page `mdbook serve` serves at {}:\n{}",
        server.url,
        problems.join("\n")
    );
    assert_eq!(served.title, built.title, "served and built titles differ");
    assert!(
        served.main_html == built.main_html,
        "the page `mdbook serve` serves at {} is not the page the book renders (index.html)",
        server.url
    );
    browser.close();
    server.stop();
    fs::remove_dir_all(&work).unwrap();
}

/// The problems of `page` that `KNOWN_TOO_WIDE` does not list, each named
/// with the page; those it lists go into `known`.
fn unknown(
    page: &str,
    problems: Vec<Problem>,
    known: &mut BTreeSet<&'static (&'static str, &'static str, &'static str)>,
) -> Vec<String> {
    let mut unknown = Vec::new();
    for problem in problems {
        let listed = problem.wide.as_ref().and_then(|(kind, what)| {
            KNOWN_TOO_WIDE
                .iter()
                .find(|(p, k, w)| *p == page && k == kind && w == what)
        });
        match listed {
            Some(entry) => {
                known.insert(entry);
            }
            None => unknown.push(format!("{page}: {}", problem.text)),
        }
    }
    unknown
}

/// Opens every chapter, measures it and takes its picture, in two browsers
/// at once (each page costs the browser a second or so, mostly for the
/// picture). Returns one of the browsers, with its tab, for more.
fn open_every_chapter(
    chromium: &Path,
    work: &Path,
    html: &Path,
    chapters: &[Chapter],
    shots: &Path,
) -> (Browser, Tab, HashMap<String, Page>) {
    let queue = Mutex::new(chapters.iter());
    let mut browsers: Vec<(Browser, Tab, HashMap<String, Page>)> = thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let queue = &queue;
                scope.spawn(move || {
                    let mut browser = Browser::launch(chromium, &work.join(format!("browser-{i}")));
                    let tab = browser.open_tab();
                    let mut pages = HashMap::new();
                    loop {
                        let Some(chapter) = queue.lock().unwrap().next() else {
                            break;
                        };
                        let page =
                            browser.measure(&tab, &file_url(&html.join(&chapter.page)), false);
                        let png = shots.join(&chapter.page).with_extension("png");
                        browser.screenshot(&tab, page.height, &png);
                        pages.insert(chapter.page.clone(), page);
                    }
                    (browser, tab, pages)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| {
                worker
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    let (browser, tab, mut pages) = browsers.remove(0);
    for (other, _, more) in browsers {
        pages.extend(more);
        other.close();
    }
    (browser, tab, pages)
}

// ---------------------------------------------------------------------------
// The book

struct Chapter {
    /// The page mdBook renders it to, relative to the book's root.
    page: String,
    /// How many `{{#` the chapter escapes (`\{{#`), which its page shows.
    escaped_directives: usize,
}

/// Every chapter of `src/SUMMARY.md` that has a file.
fn chapters() -> Vec<Chapter> {
    let book = MDBook::load(ROOT).unwrap();
    book.book
        .iter()
        .filter_map(|item| match item {
            BookItem::Chapter(chapter) => chapter.source_path.clone(),
            _ => None,
        })
        .map(|source| {
            let text = fs::read_to_string(Path::new(ROOT).join("src").join(&source)).unwrap();
            let readme = source
                .file_stem()
                .is_some_and(|stem| stem.eq_ignore_ascii_case("readme"));
            let page = if readme {
                source.with_file_name("index.html")
            } else {
                source.with_extension("html")
            };
            Chapter {
                page: page.to_string_lossy().into_owned(),
                escaped_directives: text.matches("\\{{#").count(),
            }
        })
        .collect()
}

/// Renders the book into `out` with mdBook's library (as `mdbook build`
/// does, search index included), and returns the HTML's directory.
fn render(out: &Path) -> PathBuf {
    let mut book = MDBook::load(ROOT).unwrap();
    book.config.build.build_dir = out.to_path_buf();
    book.build()
        .unwrap_or_else(|error| panic!("mdBook failed: {error:#}"));
    book.build_dir_for("html")
}

/// A new, empty directory for this test in this process.
fn fresh_dir(name: &str) -> PathBuf {
    empty_dir(format!("book-{name}-{}", std::process::id()))
}

/// Where the screenshots go: one place, emptied at every run, so that the
/// newest are the only ones.
fn screenshot_dir() -> PathBuf {
    empty_dir("book-screenshots".into())
}

/// The directory `name` in cargo's directory for tests' files, empty.
fn empty_dir(name: String) -> PathBuf {
    support::empty_dir(Path::new(env!("CARGO_TARGET_TMPDIR")).join(name))
}

fn file_url(path: &Path) -> String {
    let mut url = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"/-_.~".contains(&byte) {
            url.push(byte as char);
        } else {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
    url
}

/// Why `link` leads nowhere, if it does. Links outside the book (another
/// scheme, such as `https:`) are not followed.
fn broken(html: &Path, pages: &HashMap<String, Page>, link: &Link) -> Option<String> {
    if link.protocol != "file:" {
        return None;
    }
    let Some(path) = link.path_in(html) else {
        return Some("leads out of the book".into());
    };
    let mut file = html.join(path);
    if path.is_empty() || file.is_dir() {
        file.push("index.html");
    }
    if !file.is_file() {
        return Some("no such file".into());
    }
    if link.hash.is_empty() {
        return None;
    }
    let page = file.strip_prefix(html).unwrap().to_string_lossy();
    let has_id = match pages.get(page.as_ref()) {
        Some(opened) => opened.ids.contains(&link.hash),
        // A page the test did not open (such as print.html): its source.
        None => fs::read_to_string(&file)
            .unwrap_or_default()
            .contains(&format!("id=\"{}\"", link.hash)),
    };
    (!has_id).then(|| format!("no element with id `{}` in {page}", link.hash))
}

// ---------------------------------------------------------------------------
// What a page showed

/// One page, as measured in the browser (see `MEASURE`).
struct Page {
    title: String,
    column: f64,
    height: u32,
    wide: Vec<Wide>,
    images: Vec<(String, bool)>,
    directives: usize,
    links: Vec<Link>,
    ids: BTreeSet<String>,
    headings: Vec<Heading>,
    main_html: String,
    /// Scripts that threw, files that failed to load, errors logged.
    errors: Vec<String>,
}

/// Something wider than the text column.
struct Wide {
    kind: String,
    what: String,
    over: f64,
}

struct Heading {
    level: u64,
    id: String,
    text: String,
}

/// A link as the browser resolved it, its path and anchor decoded.
struct Link {
    href: String,
    protocol: String,
    path: String,
    hash: String,
}

impl Link {
    /// The path of the link's target within the book at `html`, if it is
    /// in the book.
    fn path_in(&self, html: &Path) -> Option<&str> {
        let root = html.to_string_lossy();
        self.path
            .strip_prefix(root.as_ref())
            .and_then(|rest| rest.strip_prefix('/'))
    }
}

/// One thing wrong with a page; for something too wide, its kind and what
/// it is, which `KNOWN_TOO_WIDE` may list.
struct Problem {
    text: String,
    wide: Option<(String, String)>,
}

impl Page {
    fn from_json(value: &Value, errors: Vec<String>) -> Page {
        let str_of = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_string();
        let list = |key: &str| value[key].as_array().cloned().unwrap_or_default();
        Page {
            title: str_of(value, "title"),
            column: value["column"].as_f64().unwrap_or_default(),
            height: value["height"].as_u64().unwrap_or(u64::from(HEIGHT)) as u32,
            wide: list("wide")
                .iter()
                .map(|w| Wide {
                    kind: str_of(w, "kind"),
                    what: str_of(w, "what"),
                    over: w["over"].as_f64().unwrap_or_default(),
                })
                .collect(),
            images: list("images")
                .iter()
                .map(|i| (str_of(i, "src"), i["loaded"].as_bool() == Some(true)))
                .collect(),
            directives: value["directives"].as_u64().unwrap_or_default() as usize,
            links: list("links").iter().map(Link::from_json).collect(),
            ids: list("ids")
                .iter()
                .filter_map(|id| id.as_str().map(str::to_string))
                .collect(),
            headings: list("headings")
                .iter()
                .map(|h| Heading {
                    level: h["level"].as_u64().unwrap_or_default(),
                    id: str_of(h, "id"),
                    text: str_of(h, "text"),
                })
                .collect(),
            main_html: str_of(value, "mainHtml"),
            errors,
        }
    }

    /// What is wrong with the page, if it may show `escaped` directives.
    fn problems(&self, escaped: usize) -> Vec<Problem> {
        let mut problems: Vec<Problem> = self
            .wide
            .iter()
            .map(|w| Problem {
                text: format!(
                    "{} `{}` is {:.0} px wider than the {:.0} px column",
                    w.kind, w.what, w.over, self.column
                ),
                wide: Some((w.kind.clone(), w.what.clone())),
            })
            .collect();
        let mut plain = Vec::new();
        for (src, loaded) in &self.images {
            if !*loaded {
                plain.push(format!("image {src} did not load"));
            }
        }
        if self.directives > escaped {
            plain.push(format!(
                "{} `{{{{#` left in the text ({escaped} escaped in the chapter)",
                self.directives
            ));
        }
        plain.extend(self.errors.iter().cloned());
        problems.extend(plain.into_iter().map(|text| Problem { text, wide: None }));
        problems
    }
}

impl Link {
    fn from_json(value: &Value) -> Link {
        let str_of = |key: &str| value[key].as_str().unwrap_or_default().to_string();
        Link {
            href: str_of("href"),
            protocol: str_of("protocol"),
            path: str_of("path"),
            hash: str_of("hash"),
        }
    }
}

/// Run in every page once it has loaded: opens what is folded, waits for
/// the images and fonts, then measures what `Page` holds. Its argument
/// says whether to return the column's HTML too.
const MEASURE: &str = r#"(async (wantHtml) => {
  const main = document.querySelector('#mdbook-content main') || document.querySelector('main');
  // Folded answers are measured as a reader sees them once opened.
  for (const details of main.querySelectorAll('details')) details.open = true;
  const text = s => s.replace(/\s+/g, ' ').trim();
  const images = [];
  const sources = new Set();
  for (const img of main.querySelectorAll('img')) {
    try { await img.decode(); } catch (e) { /* reported below */ }
    if (sources.has(img.src)) continue; // mdBook draws each image twice, to zoom
    sources.add(img.src);
    images.push({ src: img.getAttribute('src'), loaded: img.complete && img.naturalWidth > 0 });
  }
  await document.fonts.ready;
  await new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)));

  const style = getComputedStyle(main);
  const box = main.getBoundingClientRect();
  const left = box.left + parseFloat(style.paddingLeft) + parseFloat(style.borderLeftWidth);
  const right = box.right - parseFloat(style.paddingRight) - parseFloat(style.borderRightWidth);
  const column = right - left;
  const beyond = r => Math.max(r.right - right, left - r.left, r.width - column);
  const wide = [];
  const report = (kind, what, over) => {
    if (over >= 1) wide.push({ kind, what: text(what).slice(0, 100), over: Math.ceil(over) });
  };
  for (const table of main.querySelectorAll('table')) {
    const header = table.querySelector('tr');
    const cells = header ? Array.from(header.children, c => text(c.textContent)) : [];
    report('table', cells.join(' | '), beyond(table.getBoundingClientRect()));
  }
  // What the reader sees: elements with a box, more than a hidden pixel.
  const shown = el => el.getClientRects().length > 0
    && (el.getBoundingClientRect().width > 1 || el.getBoundingClientRect().height > 1);
  for (const pre of main.querySelectorAll('pre')) {
    if (!shown(pre)) continue;
    let over = beyond(pre.getBoundingClientRect());
    for (const el of [pre, ...pre.querySelectorAll('code')]) {
      over = Math.max(over, el.scrollWidth - el.clientWidth);
    }
    // Named by its longest line as shown (hidden lines left out).
    const longest = pre.innerText.split('\n').reduce((a, b) => (b.length > a.length ? b : a), '');
    report('code block', `${longest.length} characters: ${longest.trim()}`, over);
  }
  for (const img of main.querySelectorAll('img')) {
    if (!shown(img)) continue;
    const over = Math.max(beyond(img.getBoundingClientRect()), img.naturalWidth - column);
    report('image', img.getAttribute('src'), over);
  }
  // Anything else: the outermost element that sticks out.
  for (const el of main.querySelectorAll('*')) {
    if (el.closest('pre, table, img') || !shown(el)) continue;
    const parent = el.parentElement;
    if (parent !== main && beyond(parent.getBoundingClientRect()) >= 1) continue;
    report(el.tagName.toLowerCase(), el.textContent, beyond(el.getBoundingClientRect()));
  }
  const page = document.scrollingElement;
  if (page.scrollWidth > page.clientWidth) {
    report('page', document.title + ' (it scrolls sideways)', page.scrollWidth - page.clientWidth);
  }

  const links = [];
  const seen = new Set();
  for (const a of document.querySelectorAll('a[href]')) {
    if (seen.has(a.href)) continue;
    seen.add(a.href);
    const url = new URL(a.href);
    links.push({
      href: a.getAttribute('href'),
      protocol: url.protocol,
      path: decodeURIComponent(url.pathname),
      hash: decodeURIComponent(url.hash.slice(1)),
    });
  }
  const ids = Array.from(document.querySelectorAll('[id]'), e => e.id)
    .concat(Array.from(document.querySelectorAll('a[name]'), a => a.name));
  const headings = Array.from(main.querySelectorAll('h1, h2'), h => ({
    level: Number(h.tagName.slice(1)), id: h.id, text: text(h.textContent),
  }));
  return {
    title: headings.length ? headings[0].text : document.title,
    column,
    height: Math.ceil(Math.max(page.scrollHeight, innerHeight)),
    wide,
    images,
    directives: (main.textContent.match(/\{\{#/g) || []).length,
    links,
    ids,
    headings,
    mainHtml: wantHtml ? main.innerHTML : '',
  };
})"#;

/// Run in a page opened with `?search=`: waits for mdBook's search index,
/// then types each query into the search box, as a reader would, and
/// returns the links of its results.
const SEARCH: &str = r#"(async (queries) => {
  const bar = document.getElementById('mdbook-searchbar');
  const header = document.getElementById('mdbook-searchresults-header');
  const start = Date.now();
  while (!header.textContent) {
    if (Date.now() - start > 60000) throw new Error('the search index did not load');
    await new Promise(done => setTimeout(done, 20));
  }
  const found = {};
  for (const query of queries) {
    bar.value = query;
    bar.dispatchEvent(new KeyboardEvent('keyup'));
    found[query] = Array.from(document.querySelectorAll('#mdbook-searchresults a'), a => {
      const url = new URL(a.href);
      return {
        href: a.getAttribute('href'),
        protocol: url.protocol,
        path: decodeURIComponent(url.pathname),
        hash: decodeURIComponent(url.hash.slice(1)),
      };
    });
  }
  return found;
})"#;

// ---------------------------------------------------------------------------
// Chromium

/// The names Chromium goes by, on PATH.
const BROWSERS: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

fn no_chromium() -> String {
    format!(
        "no Chromium: none of {} is on PATH, and CHROMIUM does not name one \
         (`apt-get install chromium` on Debian)",
        BROWSERS.join(", ")
    )
}

/// `$CHROMIUM`, or the first of `BROWSERS` on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    BROWSERS.iter().find_map(|name| on_path(name))
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A headless Chromium, spoken to over the DevTools protocol: JSON
/// messages, each ended by a NUL byte, written to its descriptor 3 and read
/// from its descriptor 4.
struct Browser {
    child: Child,
    to: io::PipeWriter,
    from: Receiver<Value>,
    next_id: u64,
    /// Events that arrived while waiting for something else.
    events: Vec<Value>,
    /// Chromium's own standard error, for when something goes wrong.
    log: PathBuf,
}

/// A page of the browser, the way the protocol addresses it.
struct Tab {
    session: String,
}

impl Browser {
    /// Starts Chromium with its profile and its log in `work`.
    fn launch(program: &Path, work: &Path) -> Browser {
        fs::create_dir_all(work).unwrap();
        let (their_in, to) = io::pipe().unwrap();
        let (from, their_out) = io::pipe().unwrap();
        let log = work.join("chromium.log");
        let mut command = Command::new(program);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-pipe",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-sync",
                "--mute-audio",
                "--force-device-scale-factor=1",
                &format!("--window-size={WIDTH},{HEIGHT}"),
            ])
            .arg(format!(
                "--user-data-dir={}",
                work.join("chromium-profile").display()
            ))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap());
        let (read_end, write_end) = (their_in.as_raw_fd(), their_out.as_raw_fd());
        // SAFETY: between fork and exec, only async-signal-safe calls
        // (fcntl, dup2) on descriptors this process owns.
        unsafe {
            command.pre_exec(move || {
                use nix::libc::{F_DUPFD_CLOEXEC, dup2, fcntl};
                // Above 4 first, so that neither dup2 below can overwrite
                // the other's source; the copies close on exec, and dup2
                // leaves 3 and 4 open across it.
                let read_end = fcntl(read_end, F_DUPFD_CLOEXEC, 10);
                let write_end = fcntl(write_end, F_DUPFD_CLOEXEC, 10);
                if read_end < 0 || write_end < 0 || dup2(read_end, 3) < 0 || dup2(write_end, 4) < 0
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        drop((their_in, their_out));

        let (sender, receiver) = mpsc::channel();
        thread::spawn(move || {
            let mut from = BufReader::new(from);
            let mut message = Vec::new();
            while let Ok(n) = from.read_until(0, &mut message) {
                if n == 0 || message.pop() != Some(0) {
                    break; // Chromium is gone
                }
                let Ok(value) = serde_json::from_slice(&message) else {
                    break;
                };
                if sender.send(value).is_err() {
                    break; // the test is done with it
                }
                message.clear();
            }
        });
        Browser {
            child,
            to,
            from: receiver,
            next_id: 0,
            events: Vec::new(),
            log,
        }
    }

    /// Panics with `what` went wrong, and the end of Chromium's log.
    fn fail(&mut self, what: &str) -> ! {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let _ = self.child.kill();
        panic!(
            "Chromium: {what}\nthe end of its log ({}):\n{}",
            self.log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    /// Sends a command and waits for its answer.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        if let Err(e) = self.to.write_all(&bytes) {
            self.fail(&format!("sending {method}: {e}"));
        }
        let deadline = Instant::now() + STEP;
        loop {
            let message = self.next_message(deadline, method);
            if message["id"].as_u64() == Some(id) {
                if let Some(error) = message.get("error") {
                    self.fail(&format!("{method} failed: {error}"));
                }
                return message["result"].clone();
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    fn next_message(&mut self, deadline: Instant, waiting_for: &str) -> Value {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.from.recv_timeout(left) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => {
                self.fail(&format!("no answer to {waiting_for} in {STEP:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.fail(&format!("it exited while we waited for {waiting_for}"))
            }
        }
    }

    /// Waits for the event `method` of `session`.
    fn wait_event(&mut self, session: &str, method: &str) {
        let mine = |m: &Value| m["method"] == method && m["sessionId"] == session;
        if let Some(at) = self.events.iter().position(mine) {
            self.events.remove(at);
            return;
        }
        let deadline = Instant::now() + STEP;
        loop {
            let message = self.next_message(deadline, method);
            if mine(&message) {
                return;
            }
            if message.get("method").is_some() {
                self.events.push(message);
            }
        }
    }

    /// A new tab, 1280 × 900, reporting loads, errors and log entries.
    fn open_tab(&mut self) -> Tab {
        let target = self.call(None, "Target.createTarget", json!({ "url": "about:blank" }));
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
        );
        let session = attached["sessionId"].as_str().unwrap().to_string();
        for method in ["Page.enable", "Runtime.enable", "Log.enable"] {
            self.call(Some(&session), method, json!({}));
        }
        self.call(
            Some(&session),
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false }),
        );
        Tab { session }
    }

    /// Opens `url` in `tab` and waits until it has loaded, images and all.
    fn load(&mut self, tab: &Tab, url: &str) {
        self.events.clear();
        let navigated = self.call(Some(&tab.session), "Page.navigate", json!({ "url": url }));
        if let Some(error) = navigated["errorText"].as_str().filter(|e| !e.is_empty()) {
            self.fail(&format!("opening {url}: {error}"));
        }
        self.wait_event(&tab.session, "Page.loadEventFired");
    }

    /// Runs `function` (JavaScript, possibly async) with `argument` in the
    /// page, and returns what it returns.
    fn run(&mut self, tab: &Tab, function: &str, argument: Value) -> Value {
        let expression = format!("({function})({argument})");
        let result = self.call(
            Some(&tab.session),
            "Runtime.evaluate",
            json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            self.fail(&format!("a test script threw: {exception}"));
        }
        result["result"]["value"].clone()
    }

    /// Opens `url` and measures it (see `MEASURE`).
    fn measure(&mut self, tab: &Tab, url: &str, want_html: bool) -> Page {
        self.load(tab, url);
        let measured = self.run(tab, MEASURE, json!(want_html));
        let mut errors: Vec<String> = Vec::new();
        for event in self.events.drain(..) {
            if event["sessionId"] != tab.session.as_str() {
                continue;
            }
            // mdBook draws each image twice (to zoom): one error each.
            if let Some(error) = page_error(&event).filter(|e| !errors.contains(e)) {
                errors.push(error);
            }
        }
        Page::from_json(&measured, errors)
    }

    /// Writes a picture of the whole page, `height` px tall, to `path`.
    fn screenshot(&mut self, tab: &Tab, height: u32, path: &Path) {
        let shot = self.call(
            Some(&tab.session),
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": { "x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1 },
            }),
        );
        let png = base64_decode(shot["data"].as_str().unwrap_or_default());
        fs::write(path, png).unwrap();
    }

    /// Opens `page` with a search, then searches for each of `queries` in
    /// mdBook's search box, and returns each one's results.
    fn search(&mut self, tab: &Tab, page: &str, queries: &[&str]) -> HashMap<String, Vec<Link>> {
        self.load(tab, &format!("{page}?search=glossary"));
        let found = self.run(tab, SEARCH, json!(queries));
        let errors: Vec<String> = self
            .events
            .drain(..)
            .filter_map(|e| page_error(&e))
            .collect();
        assert!(errors.is_empty(), "searching: {}", errors.join("\n"));
        queries
            .iter()
            .map(|query| {
                let links = found[*query]
                    .as_array()
                    .map(|links| links.iter().map(Link::from_json).collect())
                    .unwrap_or_default();
                (query.to_string(), links)
            })
            .collect()
    }

    fn close(mut self) {
        let _ = self.call(None, "Browser.close", json!({}));
        let deadline = Instant::now() + STEP;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a page event says went wrong, if it does: a script that threw, a
/// file that did not load, an error logged.
fn page_error(event: &Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.exceptionThrown" => {
            let details = &params["exceptionDetails"];
            let description = details["exception"]["description"]
                .as_str()
                .or(details["text"].as_str())
                .unwrap_or("?");
            Some(format!("a script threw: {description}"))
        }
        "Log.entryAdded" if params["entry"]["level"] == "error" => {
            let entry = &params["entry"];
            Some(format!(
                "{}: {} {}",
                entry["source"].as_str().unwrap_or("log"),
                entry["text"].as_str().unwrap_or("?"),
                entry["url"].as_str().unwrap_or("")
            ))
        }
        "Runtime.consoleAPICalled" if params["type"] == "error" => {
            let args: Vec<String> = params["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    a["value"]
                        .as_str()
                        .map_or_else(|| a.to_string(), str::to_string)
                })
                .collect();
            Some(format!("console error: {}", args.join(" ")))
        }
        _ => None,
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {:?}", c as char),
    };
    let digits: Vec<u8> = text.bytes().filter(|&c| c != b'=').map(value).collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for chunk in digits.chunks(4) {
        let bits = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &d)| acc | (u32::from(d) << (18 - 6 * i)));
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

// ---------------------------------------------------------------------------
// mdbook serve

/// The `mdbook` the README installs: `$MDBOOK`, or `mdbook` on PATH, of
/// version 0.5.
fn mdbook() -> Result<PathBuf, String> {
    let program = match std::env::var_os("MDBOOK") {
        Some(path) => PathBuf::from(path),
        None => on_path("mdbook").ok_or(
            "no mdbook on PATH (the README installs it: \
             `cargo install mdbook --locked --version ^0.5`; or set MDBOOK)",
        )?,
    };
    let output = Command::new(&program)
        .arg("--version")
        .output()
        .map_err(|e| format!("running {} --version: {e}", program.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !version.starts_with("mdbook v0.5.") {
        return Err(format!(
            "{} is {version:?}; the book needs mdbook 0.5",
            program.display()
        ));
    }
    Ok(program)
}

/// `mdbook serve` on a free port, building into the test's directory, not
/// the reader's `book/`.
struct Serve {
    child: Child,
    url: String,
}

impl Serve {
    fn start(mdbook: &Path, work: &Path) -> Serve {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let log = work.join("mdbook-serve.log");
        let child = Command::new(mdbook)
            .args([
                "serve",
                "--hostname",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .arg("--dest-dir")
            .arg(work.join("served"))
            .arg(ROOT)
            .stdin(Stdio::null())
            .stdout(File::create(work.join("mdbook-serve.out")).unwrap())
            .stderr(File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} serve: {e}", mdbook.display()));
        let mut serve = Serve {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        };
        let deadline = Instant::now() + STEP;
        loop {
            match get(port, "/") {
                Ok(status) if status.starts_with("HTTP/1.1 200") => return serve,
                _ if Instant::now() > deadline => {
                    let said = fs::read_to_string(&log).unwrap_or_default();
                    serve.stop();
                    panic!("mdbook serve did not answer on port {port} in {STEP:?}:\n{said}");
                }
                _ => {}
            }
            if let Ok(Some(status)) = serve.child.try_wait() {
                let said = fs::read_to_string(&log).unwrap_or_default();
                panic!("mdbook serve exited ({status}):\n{said}");
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The status line of `GET path` on the local `port`.
fn get(port: u16, path: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    Ok(response.lines().next().unwrap_or_default().to_string())
}
