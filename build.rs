//! Hands the book's Rust code blocks to skeptic, as the reader sees them.
//!
//! skeptic reads raw Markdown, but the chapters take their code from the
//! listings through mdBook's `{{#include}}` directives. So this script writes
//! a copy of every chapter `src/SUMMARY.md` links, with the directives
//! expanded exactly as mdBook would (see `build/expand.rs`), to
//! `$OUT_DIR/book/`, and generates skeptic's tests from those copies.
//! `tests/book.rs` runs them.
//!
//! Unlike mdBook, which logs an error and leaves a broken directive in the
//! page, this fails the build, naming the chapter and the directive.

#[path = "build/expand.rs"]
mod expand;
#[path = "build/summary.rs"]
mod summary;

use std::collections::HashMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

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
    for file in [
        "build.rs",
        "build/expand.rs",
        "build/summary.rs",
        "book.toml",
    ] {
        watch(&root.join(file));
    }

    let book_toml = read(&root, Path::new("book.toml")).map_err(|e| vec![e])?;
    // Paths relative to the package root, so messages stay short.
    let src = book_src(&book_toml);
    let summary_path = src.join("SUMMARY.md");
    watch(&root.join(&summary_path));
    let summary = read(&root, &summary_path).map_err(|e| vec![e])?;

    let mut errors = Vec::new();
    let mut copies = Vec::new();
    let mut listing = String::new();
    let mut stems: HashMap<String, PathBuf> = HashMap::new();
    let mut seen = Vec::new();
    for link in summary::links(&summary) {
        let Some(location) = link.location else {
            continue; // A draft chapter: no file.
        };
        let chapter = src.join(&location);
        watch(&root.join(&chapter));
        if seen.contains(&chapter) {
            errors.push(format!(
                "{}: `{}` is listed twice",
                summary_path.display(),
                location.display()
            ));
            continue;
        }
        seen.push(chapter.clone());

        let text = match read(&root, &chapter) {
            Ok(text) => text,
            Err(error) => {
                errors.push(format!(
                    "{} links {}: {error}",
                    summary_path.display(),
                    location.display()
                ));
                continue;
            }
        };
        let relative = copy_path(&location);
        let copy = out_dir.join("book").join(&relative);
        let has_rust = match copy_chapter(&root, &chapter, &text, &copy) {
            Ok(has_rust) => has_rust,
            Err(more) => {
                errors.extend(more);
                continue;
            }
        };
        let _ = writeln!(listing, "{}\t{}", location.display(), relative.display());
        copies.push(copy);

        if has_rust {
            let stem = test_stem(&chapter);
            if stem.starts_with(|c: char| c.is_ascii_digit()) {
                errors.push(format!(
                    "{}: skeptic names its tests after the file name, and `{stem}_line_1` is \
                     not a Rust identifier; rename the chapter so that it starts with a letter",
                    chapter.display()
                ));
            }
            if let Some(other) = stems.insert(stem.clone(), chapter.clone()) {
                errors.push(format!(
                    "{} and {}: skeptic names its tests after the file name, so their tests \
                     would clash (both `{stem}_...`); rename one of them",
                    other.display(),
                    chapter.display()
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    // For `tests/book.rs`: which chapters were found, and where their copies are.
    let list = out_dir.join("chapters.txt");
    write_if_changed(&list, &listing)
        .map_err(|e| vec![format!("cannot write {}: {e}", list.display())])?;

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

/// Writes the expanded copy of `chapter` (whose contents are `text`) to
/// `copy`, and next to it a copy of the chapter's skeptic templates,
/// `<chapter>.skt.md`, if it has any: skeptic looks for them next to the file
/// it reads. mdBook never reads template files, so they are copied as they
/// are (their braces are `format!`'s anyway). Returns whether the chapter has
/// Rust code blocks, that is, skeptic tests.
fn copy_chapter(root: &Path, chapter: &Path, text: &str, copy: &Path) -> Result<bool, Vec<String>> {
    let dir = chapter.parent().unwrap_or(Path::new(""));
    // A template file may appear later: watch the directory for it (a
    // missing file cannot be watched, cargo would rerun this every time).
    watch(&root.join(dir));
    // mdBook drops a chapter's byte-order mark when it loads it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (expanded, files) = expand::expand(chapter, text, dir, |file| {
        fs::read_to_string(root.join(file))
    })
    .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    for file in files {
        watch(&root.join(file));
    }

    let templates = with_suffix(chapter, ".skt.md");
    let templates_copy = with_suffix(copy, ".skt.md");
    let wanted = fence_tokens(&expanded, "skt-");
    let mut defined = Vec::new();
    if root.join(&templates).is_file() {
        watch(&root.join(&templates));
        let text = read(root, &templates).map_err(|e| vec![e])?;
        defined = fence_tokens(&text, "skt-");
        write_copy(root, &templates, &templates_copy, &text)?;
    } else if templates_copy.exists() {
        fs::remove_file(&templates_copy)
            .map_err(|e| vec![format!("cannot remove {}: {e}", templates_copy.display())])?;
    }
    let missing: Vec<String> = wanted
        .iter()
        .filter(|name| !defined.contains(name))
        .map(|name| {
            format!(
                "{}: a code block uses the skeptic template `skt-{name}`, but {} has no \
                 ```rust,skt-{name} block",
                chapter.display(),
                templates.display()
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    write_copy(root, chapter, copy, &expanded)?;
    // A `rust` word: `fence_tokens` leaves an empty rest.
    Ok(fence_tokens(&expanded, "rust").iter().any(String::is_empty))
}

/// The words of code block info strings in `markdown` (split as skeptic
/// splits them) that start with `prefix`, without it and without repeats:
/// `fence_tokens(text, "skt-")` gives the skeptic templates a chapter uses
/// (or a template file defines), and `fence_tokens(text, "rust")` holds `""`
/// if it has Rust code blocks.
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

/// Reads `path` (relative to `root`), with a message naming it on failure.
fn read(root: &Path, path: &Path) -> Result<String, String> {
    fs::read_to_string(root.join(path)).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// `src` from the `[book]` table of `book.toml` (mdBook's default: `src`).
/// Only the plain `src = "..."` form is understood.
fn book_src(book_toml: &str) -> PathBuf {
    let mut table = "";
    for line in book_toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            table = line;
        } else if table == "[book]" {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            if key.trim() == "src"
                && value.len() >= 2
                && value.starts_with('"')
                && let Some(end) = value[1..].find('"')
            {
                return PathBuf::from(&value[1..1 + end]);
            }
        }
    }
    PathBuf::from("src")
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

/// Where under `$OUT_DIR/book` the copy of the chapter at `location` (relative
/// to the book's source directory) goes: the same relative path, kept inside.
fn copy_path(location: &Path) -> PathBuf {
    location
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

/// Writes a copy of `source` (relative to `root`) if it changed. skeptic
/// prints `rerun-if-changed` for the copies it reads, and a file written
/// while this script runs is newer than the run, so cargo would run the
/// script once more for nothing. Only this script writes the copies, so a
/// rewritten copy gets the modification time of its source, as `cp -p` would.
fn write_copy(root: &Path, source: &Path, copy: &Path, contents: &str) -> Result<(), Vec<String>> {
    let written = write_if_changed(copy, contents)
        .map_err(|e| vec![format!("cannot write {}: {e}", copy.display())])?;
    if written {
        let modified = fs::metadata(root.join(source)).and_then(|m| m.modified());
        let set = modified.and_then(|time| {
            fs::File::options()
                .write(true)
                .open(copy)?
                .set_modified(time)
        });
        set.map_err(|e| vec![format!("cannot set the time of {}: {e}", copy.display())])?;
    }
    Ok(())
}
