//! Hands the book's Rust code blocks to skeptic, as the reader sees them.
//!
//! skeptic reads raw Markdown, but the chapters take their code from the
//! listings through mdBook's `{{#include}}` directives. So this script has
//! mdBook itself (its library, `mdbook-driver`) preprocess the book, writes
//! every chapter as mdBook hands it to its renderers to `$OUT_DIR/book/`,
//! and generates skeptic's tests from those copies. `tests/book.rs` runs them.
//!
//! mdBook only logs an error for a directive whose file is missing, and
//! includes nothing, silently, for an anchor that is not in the file. This
//! script fails the build instead: it checks every chapter's own directives
//! (the file can be read, the anchor is in it), naming the chapter and the
//! directive, and then fails on anything mdBook logs at `WARN` or `ERROR`.

#[path = "build/logged.rs"]
mod logged;

use mdbook_driver::MDBook;
use mdbook_driver::book::{Book, BookItem, Chapter};
use mdbook_driver::builtin_renderers::MarkdownRenderer;
use std::collections::HashMap;
use std::env;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::SystemTime;

/// The skeptic templates. Code blocks marked `rust,skt-lib` show an excerpt
/// of a library crate (with the rest of the file as hidden lines); a library
/// has no `main`, so skeptic compiles them inside this template, which adds
/// one. skeptic reads a chapter's templates from `<chapter>.skt.md` beside
/// it, so this is written beside the copy of each chapter that uses one.
const TEMPLATES: &str = "\
```rust,skt-lib
#![allow(dead_code)]
{}
fn main() {{}}
```
";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(errors) => {
            eprintln!("error: the book's code blocks cannot be extracted for skeptic:");
            for error in errors {
                eprintln!("  {error}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Vec<String>> {
    let root = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    watch(&root.join("build.rs"));
    watch(&root.join("build/logged.rs"));
    watch(&root.join("book.toml"));

    let (book, mut logs) = logged::warnings(|| MDBook::load(&root));
    let book = book.map_err(|e| vec![format!("mdBook cannot load the book: {e:#}")])?;
    // SUMMARY.md, the chapters and what they include from beside them: a
    // directory is watched whole.
    watch(&book.source_dir());
    // Paths relative to the package root, so messages stay short.
    let src = &book.config.book.src;

    let mut errors = Vec::new();
    for (source, content) in chapters(&book.book) {
        let dir = source.parent().unwrap_or(Path::new(""));
        for (directive, path, anchor) in directives(content) {
            let file = src.join(dir).join(path);
            let problem = match fs::read_to_string(root.join(&file)) {
                Err(error) => format!("cannot read {}: {error}", file.display()),
                Ok(text) => {
                    watch(&root.join(&file));
                    match anchor {
                        Some(anchor) if !has_anchor(&text, anchor) => format!(
                            "there is no `ANCHOR: {anchor}` line in {} \
                             (mdBook would include nothing)",
                            file.display()
                        ),
                        _ => continue,
                    }
                }
            };
            let chapter = src.join(source);
            errors.push(format!("{}: `{directive}`: {problem}", chapter.display()));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let (preprocessed, more) = logged::warnings(|| book.preprocess_book(&MarkdownRenderer::new()));
    logs.extend(more);
    let (preprocessed, _) =
        preprocessed.map_err(|e| vec![format!("mdBook cannot preprocess the book: {e:#}")])?;
    if !logs.is_empty() {
        return Err(logs.iter().map(|log| format!("mdBook: {log}")).collect());
    }

    let mut copies = Vec::new();
    let mut stems: HashMap<String, PathBuf> = HashMap::new();
    for (source, content) in chapters(&preprocessed) {
        let path = src.join(source);
        let copy = out_dir.join("book").join(copy_path(source));
        let modified = fs::metadata(root.join(&path)).and_then(|m| m.modified());
        let templates = with_suffix(&copy, ".skt.md");
        let used = fence_tokens(content, "skt-");
        let written = modified.and_then(|time| {
            write_copy(&copy, content, time)?;
            if used.is_empty() {
                match fs::remove_file(&templates) {
                    Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
                    _ => Ok(()),
                }
            } else {
                write_copy(&templates, TEMPLATES, time)
            }
        });
        if let Err(error) = written {
            errors.push(format!("cannot copy {}: {error}", path.display()));
        }
        copies.push(copy);
        for name in used.iter().filter(|name| *name != "lib") {
            errors.push(format!(
                "{}: a code block uses the skeptic template `skt-{name}`, but build.rs \
                 defines only `skt-lib`",
                path.display()
            ));
        }

        // A `rust` word: `fence_tokens` leaves an empty rest.
        if !fence_tokens(content, "rust").contains(&String::new()) {
            continue; // No Rust code blocks, so no skeptic tests.
        }
        let stem = test_stem(source);
        if stem.starts_with(|c: char| c.is_ascii_digit()) {
            errors.push(format!(
                "{}: skeptic names its tests after the file name, and `{stem}_line_1` is \
                 not a Rust identifier; rename the chapter so that it starts with a letter",
                path.display()
            ));
        }
        if let Some(other) = stems.insert(stem.clone(), path.clone()) {
            errors.push(format!(
                "{} and {}: skeptic names its tests after the file name, so their tests \
                 would clash (both `{stem}_...`); rename one of them",
                other.display(),
                path.display()
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    if copies.is_empty() {
        // skeptic writes nothing when given no files; `tests/book.rs` still
        // includes its output.
        let tests = out_dir.join("skeptic-tests.rs");
        write_if_changed(&tests, "// The book has no chapters yet.\n")
            .map_err(|e| vec![format!("cannot write {}: {e}", tests.display())])?;
    } else {
        skeptic::generate_doc_tests(&copies);
    }
    Ok(())
}

/// The chapters of `book` that have a file (draft chapters have none): the
/// file's path in the book's source directory, and the chapter's text.
fn chapters(book: &Book) -> impl Iterator<Item = (&Path, &str)> {
    book.iter().filter_map(|item| match item {
        BookItem::Chapter(Chapter {
            source_path: Some(source),
            content,
            ..
        }) => Some((source.as_path(), content.as_str())),
        _ => None,
    })
}

/// The `{{#include}}`, `{{#rustdoc_include}}` and `{{#playground}}`
/// directives in `markdown`, as mdBook finds them: each as written, with the
/// file it names and the anchor it selects, if any.
fn directives(markdown: &str) -> Vec<(&str, &str, Option<&str>)> {
    let mut found = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("{{") {
        let (before, from) = rest.split_at(start);
        if before.ends_with('\\') && from[2..].starts_with('#') {
            // Escaped: mdBook shows the rest of the line as it is.
            rest = &from[from.find('\n').unwrap_or(from.len())..];
            continue;
        }
        rest = &from[1..];
        let Some(end) = from.find("}}") else {
            break;
        };
        // `{{#kind target words...}}`, with no space after the `#`.
        let inside = from[2..end].trim_start().strip_prefix('#').unwrap_or("");
        let (kind, words) = inside.split_once(char::is_whitespace).unwrap_or_default();
        let Some(target) = words.split_whitespace().next() else {
            continue;
        };
        if !matches!(kind, "include" | "rustdoc_include" | "playground") {
            continue;
        }
        rest = &from[end + 2..];
        // `path`, `path:anchor`, or `path:` and line numbers.
        let (path, anchor) = match target.split_once(':') {
            Some((path, selector)) if kind != "playground" => {
                let first = selector.split(':').next().unwrap_or_default();
                let numbered = first.is_empty() || first.parse::<usize>().is_ok();
                (path, (!numbered).then_some(first))
            }
            _ => (target, None),
        };
        found.push((&from[..end + 2], path, anchor));
    }
    found
}

/// Whether `text` has a line starting the anchor `name`, as mdBook reads an
/// `ANCHOR: name` comment.
fn has_anchor(text: &str, name: &str) -> bool {
    text.match_indices("ANCHOR:").any(|(at, marker)| {
        let rest = text[at + marker.len()..].trim_start_matches([' ', '\t']);
        let len = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        &rest[..len] == name
    })
}

/// The words of code block info strings in `markdown` (split as skeptic
/// splits them) that start with `prefix`, without it and without repeats:
/// `fence_tokens(text, "skt-")` gives the skeptic templates a chapter uses,
/// and `fence_tokens(text, "rust")` holds `""` if it has Rust code blocks.
fn fence_tokens(markdown: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in markdown.lines() {
        let line = line.trim_start();
        let Some(info) = line
            .strip_prefix("```")
            .or_else(|| line.strip_prefix("~~~"))
        else {
            continue;
        };
        for token in info.split(|c: char| !(c == '_' || c == '-' || c.is_alphanumeric())) {
            if let Some(name) = token.strip_prefix(prefix)
                && !names.iter().any(|known| known == name)
            {
                names.push(name.to_owned());
            }
        }
    }
    names
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn watch(path: &Path) {
    println!("cargo:rerun-if-changed={}", path.display());
}

/// The name skeptic gives a file's tests: its stem, lower-cased, with every
/// run of characters other than ASCII letters and digits turned into one
/// `_` (and none at the ends), as skeptic's `sanitize_test_name` does.
fn test_stem(path: &Path) -> String {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    stem.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_")
}

/// Where under `$OUT_DIR/book` the copy of the chapter at `source` (relative
/// to the book's source directory) goes: the same relative path, kept inside.
fn copy_path(source: &Path) -> PathBuf {
    source
        .components()
        .filter_map(|component| match component {
            Component::Normal(name) => Some(PathBuf::from(name)),
            Component::ParentDir => Some(PathBuf::from("_up_")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// Writes only if the contents differ, so cargo sees no change.
fn write_if_changed(path: &Path, contents: &str) -> io::Result<bool> {
    if fs::read_to_string(path).is_ok_and(|current| current == contents) {
        return Ok(false);
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, contents)?;
    Ok(true)
}

/// Writes `copy` if it changed, dated `modified` (its chapter's time, as
/// `cp -p` would). skeptic prints `rerun-if-changed` for the copies and
/// their templates, and a file written while this script runs is newer than
/// the run, so cargo would run the script once more for nothing.
fn write_copy(copy: &Path, contents: &str, modified: SystemTime) -> io::Result<()> {
    if write_if_changed(copy, contents)? {
        fs::File::options()
            .write(true)
            .open(copy)?
            .set_modified(modified)?;
    }
    Ok(())
}
