//! Expands mdBook's `{{#include}}`-family directives in a chapter exactly as
//! mdBook 0.5's built-in `links` preprocessor renders them, so that the code
//! blocks skeptic compiles are the code blocks the reader sees.
//!
//! The rules mirror `mdbook-driver` 0.5's `builtin_preprocessors/links.rs`
//! (`find_links`, `Link::from_capture`, `parse_range_or_anchor`,
//! `Link::render_with_path`, `replace_all`, `MAX_LINK_NESTED_DEPTH`) and
//! `builtin_preprocessors/links/take_lines.rs` (`take_lines`,
//! `take_anchored_lines`, `take_rustdoc_include_lines`,
//! `take_rustdoc_include_anchored_lines` and the `ANCHOR_START` /
//! `ANCHOR_END` patterns). Whenever mdBook would quietly render something
//! other than what the author most likely meant (a missing file or anchor, a
//! selector it ignores part of or that selects nothing, a directive it does not
//! know, a `{{#` it does not recognise, includes nested too deep) this module
//! returns an [`Error`] instead.
//!
//! It is shared by `build.rs`, `tests/expand.rs` and `tests/book.rs` (through
//! `#[path]`), so it uses nothing but `std`.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// How deep includes may nest: mdBook's `MAX_LINK_NESTED_DEPTH`. Directives
/// found in text that is already this many includes deep are an error.
pub const MAX_DEPTH: usize = 10;

/// Why a directive could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file a directive names could not be read (missing, not UTF-8...).
    Unreadable { path: PathBuf, reason: String },
    /// The file has no `ANCHOR: name` line for the requested anchor.
    MissingAnchor { path: PathBuf, anchor: String },
    /// The selector after the path is one mdBook would misread or ignore.
    /// `selector` is what follows the path's first `:`.
    BadSelector { selector: String, reason: String },
    /// The selected lines are not all in the file.
    OutOfRange {
        path: PathBuf,
        selector: String,
        lines: usize,
    },
    /// `{{#name ...}}` with a name mdBook does not know (left as text).
    UnknownDirective,
    /// A known directive without a path (left as text).
    MissingPath,
    /// A `{{#` that is not a directive mdBook recognises (left as text).
    Malformed,
    /// `{{#playpen}}`: mdBook accepts it but warns that it was renamed.
    Renamed,
    /// Includes nested deeper than [`MAX_DEPTH`]; mdBook drops the text.
    TooDeep,
}

/// A directive that could not be expanded, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The chapter being expanded, as given to [`expand`].
    pub chapter: PathBuf,
    /// The files the directive sits in, outermost first, when it is not in
    /// the chapter itself but in a file the chapter includes.
    pub within: Vec<PathBuf>,
    /// The directive exactly as written, or the start of a malformed one.
    pub directive: String,
    pub problem: Problem,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.chapter.display())?;
        for file in &self.within {
            write!(f, ", in included file {}", file.display())?;
        }
        write!(f, ": `{}`: ", self.directive)?;
        match &self.problem {
            Problem::Unreadable { path, reason } => {
                write!(f, "cannot read {}: {reason}", path.display())
            }
            Problem::MissingAnchor { path, anchor } => write!(
                f,
                "there is no `ANCHOR: {anchor}` line in {} (mdBook would include nothing)",
                path.display()
            ),
            Problem::BadSelector { selector, reason } => {
                write!(f, "invalid line selector `:{selector}`: {reason}")
            }
            Problem::OutOfRange {
                path,
                selector,
                lines,
            } => write!(
                f,
                "lines `:{selector}` are out of range: {} has {lines} line{}",
                path.display(),
                if *lines == 1 { "" } else { "s" }
            ),
            Problem::UnknownDirective => f.write_str(
                "unknown directive (mdBook would leave it in the page as text; \
                 write `\\{{#` to show a literal `{{#`)",
            ),
            Problem::MissingPath => f.write_str("the directive names no file"),
            Problem::Malformed => f.write_str(
                "not a directive mdBook understands, so it would be left in the page as text \
                 (directives look like `{{#include path}}`; write `\\{{#` to show a literal `{{#`)",
            ),
            Problem::Renamed => f.write_str("`{{#playpen}}` was renamed `{{#playground}}`"),
            Problem::TooDeep => write!(
                f,
                "includes nest more than {MAX_DEPTH} deep (is a file including itself?)"
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Expands every directive in `text`, the contents of the chapter `chapter`,
/// whose directive paths are relative to `chapter_dir`, reading files through
/// `read`.
///
/// Returns the text mdBook would hand to its renderers and every path `read`
/// was asked for (without repeats, in first-use order), so a build script can
/// watch them; or every directive that could not be expanded (like mdBook, it
/// carries on after one). `chapter` is only used in error messages. Like
/// mdBook, paths are joined, never normalised, and included files are read
/// as they are (mdBook strips a byte-order mark from chapters only, when it
/// loads them).
pub fn expand<F>(
    chapter: &Path,
    text: &str,
    chapter_dir: &Path,
    read: F,
) -> Result<(String, Vec<PathBuf>), Vec<Error>>
where
    F: FnMut(&Path) -> io::Result<String>,
{
    let mut expander = Expander {
        chapter,
        read,
        files: Vec::new(),
        within: Vec::new(),
        errors: Vec::new(),
    };
    let expanded = expander.expand_text(text, chapter_dir, 0);
    if expander.errors.is_empty() {
        Ok((expanded, expander.files))
    } else {
        Err(expander.errors)
    }
}

struct Expander<'c, F> {
    chapter: &'c Path,
    read: F,
    files: Vec<PathBuf>,
    /// The included files around the text being expanded, outermost first.
    within: Vec<PathBuf>,
    errors: Vec<Error>,
}

impl<F> Expander<'_, F>
where
    F: FnMut(&Path) -> io::Result<String>,
{
    /// mdBook's `replace_all`: `text` is `depth` includes deep and its paths
    /// are relative to `dir`. A directive that fails is recorded and, as
    /// mdBook does, left in the text.
    fn expand_text(&mut self, text: &str, dir: &Path, depth: usize) -> String {
        let mut out = String::with_capacity(text.len());
        let mut copied_to = 0;
        let mut from = 0;
        while let Some(found) = find_directive(text, from) {
            from = found.end;
            self.check_verbatim(&text[copied_to..found.start]);
            out.push_str(&text[copied_to..found.start]);
            copied_to = found.end;
            let source = &text[found.start..found.end];
            match self.expand_directive(&found, source, dir, depth) {
                Ok(expanded) => out.push_str(&expanded),
                Err(problem) => {
                    self.fail(source, problem);
                    out.push_str(source);
                }
            }
        }
        self.check_verbatim(&text[copied_to..]);
        out.push_str(&text[copied_to..]);
        out
    }

    fn expand_directive(
        &mut self,
        found: &Found<'_>,
        source: &str,
        dir: &Path,
        depth: usize,
    ) -> Result<String, Problem> {
        let directive = classify(found)?;
        let rendered = self.render(&directive, dir, source)?;
        // mdBook checks the depth after rendering a directive successfully,
        // whatever its kind, and then drops it.
        if depth >= MAX_DEPTH {
            return Err(Problem::TooDeep);
        }
        Ok(match directive.file() {
            Some(file) => {
                let target = dir.join(file);
                // mdBook's `LinkType::relative_path`: the included text's own
                // directives are relative to the included file.
                let inner_dir = target.parent().unwrap_or(Path::new("")).to_path_buf();
                self.within.push(target);
                let expanded = self.expand_text(&rendered, &inner_dir, depth + 1);
                self.within.pop();
                expanded
            }
            None => rendered,
        })
    }

    /// Text mdBook copies through unchanged must not hold what looks like an
    /// attempt at a directive: `{{`, `#` and a name, with any whitespace
    /// between. (`{{` and `#[attribute]` may meet in Rust code.)
    fn check_verbatim(&mut self, text: &str) {
        let mut from = 0;
        while let Some(offset) = text[from..].find("{{") {
            let start = from + offset;
            let after = text[start + 2..].trim_start();
            let looks_like_directive = after.strip_prefix('#').is_some_and(|name| {
                name.trim_start()
                    .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            });
            if looks_like_directive {
                let rest = &text[start..];
                let line = rest.split('\n').next().unwrap_or(rest);
                let shown: String = line.chars().take(60).collect();
                self.fail(&shown, Problem::Malformed);
                from = start + 2;
            } else {
                from = start + 1;
            }
        }
    }

    /// mdBook's `Link::render_with_path`.
    fn render(
        &mut self,
        directive: &Directive<'_>,
        dir: &Path,
        source: &str,
    ) -> Result<String, Problem> {
        match directive {
            // mdBook drops the backslash and copies the rest, unexpanded.
            Directive::Escaped => Ok(source[1..].to_owned()),
            // mdBook records the title and renders nothing.
            Directive::Title => Ok(String::new()),
            Directive::Include {
                file,
                selector,
                hidden,
            } => {
                let target = dir.join(file);
                let contents = self.read_file(&target)?;
                let selection = parse_selector(*selector)?;
                select(&contents, &selection, *hidden, &target, *selector)
            }
            Directive::Playground { file, attributes } => {
                let target = dir.join(file);
                let mut contents = self.read_file(&target)?;
                if !contents.ends_with('\n') {
                    contents.push('\n');
                }
                let info = if attributes.is_empty() {
                    "rust".to_owned()
                } else {
                    format!("rust,{}", attributes.join(","))
                };
                Ok(format!("```{info}\n{contents}```\n"))
            }
        }
    }

    fn read_file(&mut self, path: &Path) -> Result<String, Problem> {
        if !self.files.iter().any(|seen| seen == path) {
            self.files.push(path.to_path_buf());
        }
        (self.read)(path).map_err(|err| Problem::Unreadable {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })
    }

    fn fail(&mut self, directive: &str, problem: Problem) {
        self.errors.push(Error {
            chapter: self.chapter.to_path_buf(),
            within: self.within.clone(),
            directive: directive.to_owned(),
            problem,
        });
    }
}

/// The lines of `contents` (the file at `path`) that `selection` takes, as
/// `{{#include}}` or, if `hidden`, `{{#rustdoc_include}}` renders them.
fn select(
    contents: &str,
    selection: &Selection,
    hidden: bool,
    path: &Path,
    selector: Option<&str>,
) -> Result<String, Problem> {
    match selection {
        // Even `ANCHOR` lines stay: mdBook's `take_lines(.., RangeFull)`
        // keeps every line (and `rustdoc_include` hides none).
        Selection::All => Ok(take_lines(contents, 0, None)),
        Selection::Lines { start, end } => {
            let lines = contents.lines().count();
            if *start >= lines || end.is_some_and(|end| end > lines) {
                return Err(Problem::OutOfRange {
                    path: path.to_path_buf(),
                    selector: selector.unwrap_or_default().to_owned(),
                    lines,
                });
            }
            Ok(if hidden {
                hide_outside_lines(contents, *start, *end)
            } else {
                take_lines(contents, *start, *end)
            })
        }
        Selection::Anchor(anchor) => {
            let taken = if hidden {
                hide_outside_anchor(contents, anchor)
            } else {
                take_anchor(contents, anchor)
            };
            taken.ok_or_else(|| Problem::MissingAnchor {
                path: path.to_path_buf(),
                anchor: anchor.clone(),
            })
        }
    }
}

/// A match of mdBook's `find_links` pattern:
///
/// ```text
/// \\\{\{\#.*\}\}  |  \{\{\s*\#([a-zA-Z0-9_]+)\s+([^}]+)\}\}
/// ```
///
/// `name` and `rest` are the two capture groups; both are `None` for the
/// first (escaped) alternative.
struct Found<'t> {
    start: usize,
    end: usize,
    name: Option<&'t str>,
    rest: Option<&'t str>,
}

/// The leftmost match of mdBook's directive pattern at or after `from`,
/// with the regex crate's leftmost-first semantics.
fn find_directive(text: &str, from: usize) -> Option<Found<'_>> {
    let bytes = text.as_bytes();
    (from..bytes.len()).find_map(|at| match bytes[at] {
        b'\\' => match_escaped(text, at),
        b'{' => match_directive(text, at),
        _ => None,
    })
}

/// The first alternative, `\\\{\{\#.*\}\}`: `.` is anything but `\n` and `*`
/// is greedy, so the match runs to the last `}}` on the line.
fn match_escaped(text: &str, at: usize) -> Option<Found<'_>> {
    let body = at + "\\{{#".len();
    if !text[at..].starts_with("\\{{#") {
        return None;
    }
    let line_end = text[body..].find('\n').map_or(text.len(), |n| body + n);
    let close = text[body..line_end].rfind("}}")?;
    Some(Found {
        start: at,
        end: body + close + 2,
        name: None,
        rest: None,
    })
}

/// The second alternative, `\{\{\s*\#([a-zA-Z0-9_]+)\s+([^}]+)\}\}`.
fn match_directive(text: &str, at: usize) -> Option<Found<'_>> {
    let after_braces = text[at..].strip_prefix("{{")?;
    let after_hash = after_braces.trim_start().strip_prefix('#')?;
    let name_len = after_hash
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(after_hash.len());
    if name_len == 0 {
        return None;
    }
    let name = &after_hash[..name_len];
    let after_name = &after_hash[name_len..];
    // `\s+([^}]+)` is a run of non-`}` text starting with whitespace: the
    // whitespace goes to `\s+` greedily, but if nothing else is left `\s+`
    // gives its last character back so that `[^}]+` matches one.
    let run_len = after_name.find('}').unwrap_or(after_name.len());
    let run = &after_name[..run_len];
    if !run.starts_with(char::is_whitespace) || !after_name[run_len..].starts_with("}}") {
        return None;
    }
    let trimmed = run.trim_start();
    let rest = if trimmed.is_empty() {
        let last = run.char_indices().next_back().map(|(i, _)| i)?;
        if last == 0 {
            // A single whitespace character cannot feed both `\s+` and `[^}]+`.
            return None;
        }
        &run[last..]
    } else {
        trimmed
    };
    let end = text.len() - after_name.len() + run_len + 2;
    Some(Found {
        start: at,
        end,
        name: Some(name),
        rest: Some(rest),
    })
}

/// What a pattern match means: mdBook's `LinkType`.
enum Directive<'t> {
    Escaped,
    Title,
    /// `{{#include}}`, or `{{#rustdoc_include}}` when `hidden`.
    Include {
        file: &'t str,
        selector: Option<&'t str>,
        hidden: bool,
    },
    Playground {
        file: &'t str,
        attributes: Vec<&'t str>,
    },
}

impl Directive<'_> {
    /// The file whose directory the rendered text's own directives are
    /// relative to (mdBook's `LinkType::relative_path`).
    fn file(&self) -> Option<&str> {
        match self {
            Directive::Escaped | Directive::Title => None,
            Directive::Include { file, .. } | Directive::Playground { file, .. } => Some(file),
        }
    }
}

/// mdBook's `Link::from_capture`, except that what mdBook skips (and so
/// leaves in the page as text) is an error here.
fn classify<'t>(found: &Found<'t>) -> Result<Directive<'t>, Problem> {
    let (Some(name), Some(rest)) = (found.name, found.rest) else {
        return Ok(Directive::Escaped);
    };
    if name == "title" {
        return Ok(Directive::Title);
    }
    let mut words = rest.split_whitespace();
    let file = words.next();
    let known = matches!(
        name,
        "include" | "rustdoc_include" | "playground" | "playpen"
    );
    let Some(file) = file else {
        return Err(if known {
            Problem::MissingPath
        } else {
            Problem::UnknownDirective
        });
    };
    match name {
        "include" | "rustdoc_include" => {
            // `parse_include_path`: everything after the first `:` selects.
            let (file, selector) = match file.split_once(':') {
                Some((file, selector)) => (file, Some(selector)),
                None => (file, None),
            };
            Ok(Directive::Include {
                file,
                selector,
                hidden: name == "rustdoc_include",
            })
        }
        "playground" => Ok(Directive::Playground {
            file,
            attributes: words.collect(),
        }),
        "playpen" => Err(Problem::Renamed),
        _ => Err(Problem::UnknownDirective),
    }
}

/// Which lines of a file a directive takes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selection {
    /// The whole file.
    All,
    /// Zero-based `start`, exclusive `end` (`None`: to the end of the file).
    Lines {
        start: usize,
        end: Option<usize>,
    },
    Anchor(String),
}

/// mdBook's `parse_range_or_anchor`, rejecting what it would silently
/// reinterpret or ignore.
fn parse_selector(selector: Option<&str>) -> Result<Selection, Problem> {
    let spec = selector.unwrap_or("");
    let bad = |reason: &str| Problem::BadSelector {
        selector: spec.to_owned(),
        reason: reason.to_owned(),
    };
    let mut parts = spec.splitn(3, ':');
    let first = parts.next().unwrap_or("");
    let second = parts.next();
    if parts.next().is_some() {
        return Err(bad(
            "it has more than two `:`-separated fields; mdBook ignores the rest",
        ));
    }
    let start = if first.is_empty() {
        None
    } else if let Ok(line) = first.parse::<usize>() {
        if line == 0 {
            return Err(bad("lines are numbered from 1"));
        }
        Some(line - 1)
    } else {
        // Anything else names an anchor, even `-5` or `1.5`.
        if second.is_some() {
            return Err(bad("mdBook ignores everything after the anchor name"));
        }
        return Ok(Selection::Anchor(first.to_owned()));
    };
    let end = match second {
        None => None,
        Some("") => None,
        Some(text) => match text.parse::<usize>() {
            Ok(end) => Some(end),
            Err(_) => {
                return Err(bad(
                    "the end is not a line number; mdBook would include to the end of the file",
                ));
            }
        },
    };
    Ok(match (start, second, end) {
        (Some(start), Some(_), Some(end)) => {
            if end <= start {
                return Err(bad("the range selects no lines"));
            }
            Selection::Lines {
                start,
                end: Some(end),
            }
        }
        (Some(start), Some(_), None) => Selection::Lines { start, end: None },
        (Some(start), None, _) => Selection::Lines {
            start,
            end: Some(start + 1),
        },
        (None, _, Some(end)) => {
            if end == 0 {
                return Err(bad("the range selects no lines"));
            }
            Selection::Lines {
                start: 0,
                end: Some(end),
            }
        }
        (None, _, None) => Selection::All,
    })
}

/// mdBook's `take_lines`. Note that it joins the lines with `\n`, so the
/// result never ends with a newline and `\r\n` becomes `\n`.
fn take_lines(contents: &str, start: usize, end: Option<usize>) -> String {
    let lines = contents.lines().skip(start);
    let taken: Vec<&str> = match end {
        Some(end) => lines.take(end.saturating_sub(start)).collect(),
        None => lines.collect(),
    };
    taken.join("\n")
}

/// mdBook's `take_rustdoc_include_lines`: lines outside the range are kept
/// but prefixed with `# `.
fn hide_outside_lines(contents: &str, start: usize, end: Option<usize>) -> String {
    let lines: Vec<String> = contents
        .lines()
        .enumerate()
        .map(|(index, line)| {
            if index >= start && end.is_none_or(|end| index < end) {
                line.to_owned()
            } else {
                format!("# {line}")
            }
        })
        .collect();
    lines.join("\n")
}

/// mdBook's `take_anchored_lines`: the lines after the first `ANCHOR: name`
/// up to the next `ANCHOR_END: name` (or the end of the file), without the
/// lines marking other anchors. `None` if the anchor never starts.
fn take_anchor(contents: &str, anchor: &str) -> Option<String> {
    let mut kept = Vec::new();
    let mut inside = false;
    let mut found = false;
    for line in contents.lines() {
        if inside {
            match anchor_name(line, END_MARK) {
                Some(name) if name == anchor => break,
                Some(_) => {}
                None => {
                    if anchor_name(line, START_MARK).is_none() {
                        kept.push(line);
                    }
                }
            }
        } else if anchor_name(line, START_MARK) == Some(anchor) {
            inside = true;
            found = true;
        }
    }
    found.then(|| kept.join("\n"))
}

/// mdBook's `take_rustdoc_include_anchored_lines`: the lines of every
/// `ANCHOR: name` ... `ANCHOR_END: name` section as they are, the others
/// behind `# `, and no line marking an anchor. `None` if the anchor never
/// starts.
fn hide_outside_anchor(contents: &str, anchor: &str) -> Option<String> {
    let mut kept = Vec::new();
    let mut inside = false;
    let mut found = false;
    for line in contents.lines() {
        if inside {
            match anchor_name(line, END_MARK) {
                Some(name) => {
                    if name == anchor {
                        inside = false;
                    }
                }
                None => {
                    if anchor_name(line, START_MARK).is_none() {
                        kept.push(line.to_owned());
                    }
                }
            }
        } else if let Some(name) = anchor_name(line, START_MARK) {
            if name == anchor {
                inside = true;
                found = true;
            }
        } else if anchor_name(line, END_MARK).is_none() {
            kept.push(format!("# {line}"));
        }
    }
    found.then(|| kept.join("\n"))
}

const START_MARK: &str = "ANCHOR:";
const END_MARK: &str = "ANCHOR_END:";

/// The name in the leftmost match of mdBook's `ANCHOR:\s*([\w_-]+)` (or
/// `ANCHOR_END:...`) anywhere in `line`.
fn anchor_name<'l>(line: &'l str, mark: &str) -> Option<&'l str> {
    let mut from = 0;
    while let Some(offset) = line[from..].find(mark) {
        let after = from + offset + mark.len();
        let name = line[after..].trim_start();
        let len = name.find(|c: char| !is_name_char(c)).unwrap_or(name.len());
        if len > 0 {
            return Some(&name[..len]);
        }
        from = after;
    }
    None
}

/// The regex class `[\w_-]`. For ASCII this is exact: letters, digits, `_`
/// and `-`. Beyond ASCII, `\w` is Alphabetic, Mark, Decimal_Number,
/// Connector_Punctuation and Join_Control; std has no Mark or
/// Decimal_Number tables, so this takes every alphanumeric character, the
/// connector punctuation and the join controls.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(
            c,
            '_' | '-'
                | '\u{203F}'
                | '\u{2040}'
                | '\u{2054}'
                | '\u{FE33}'
                | '\u{FE34}'
                | '\u{FE4D}'
                | '\u{FE4E}'
                | '\u{FE4F}'
                | '\u{FF3F}'
                | '\u{200C}'
                | '\u{200D}'
        )
}
