//! Unit tests of the directive expander `build.rs` uses (`build/expand.rs`),
//! on in-memory files. The expected outputs follow mdBook 0.5's `links`
//! preprocessor; `tests/book.rs` also compares the expander with mdBook
//! itself on files on disk.

#[path = "../build/expand.rs"]
mod expand;
#[path = "../build/summary.rs"]
mod summary;

use expand::{Error, MAX_DEPTH, Problem};
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

const LISTING: &str = "\
use std::io;
// ANCHOR: main
fn main() {
    // ANCHOR: inner
    let x = 1;
    // ANCHOR_END: inner
    println!(\"{x}\");
}
// ANCHOR_END: main
// ANCHOR: tail
fn tail() {}
";

/// Expands `text` as the chapter `src/chapter.md`, with `files` (paths as
/// the expander asks for them) as the only files there are.
fn expand_with(files: &[(&str, &str)], text: &str) -> Result<(String, Vec<PathBuf>), Vec<Error>> {
    let files: HashMap<PathBuf, String> = files
        .iter()
        .map(|(path, text)| (PathBuf::from(path), (*text).to_owned()))
        .collect();
    expand::expand(
        Path::new("src/chapter.md"),
        text,
        Path::new("src"),
        |path: &Path| {
            files
                .get(path)
                .cloned()
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
        },
    )
}

fn expanded(files: &[(&str, &str)], text: &str) -> String {
    match expand_with(files, text) {
        Ok((text, _)) => text,
        Err(errors) => panic!("{}", errors[0]),
    }
}

fn errors(files: &[(&str, &str)], text: &str) -> Vec<Error> {
    match expand_with(files, text) {
        Ok((text, _)) => panic!("expected an error, got:\n{text}"),
        Err(errors) => errors,
    }
}

/// The only error expanding `text` gives.
fn error(files: &[(&str, &str)], text: &str) -> Error {
    let mut errors = errors(files, text);
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors.remove(0)
}

fn listing(text: &str) -> String {
    expanded(&[("src/../listings/a.rs", LISTING)], text)
}

#[test]
fn text_without_directives_is_unchanged() {
    let text = "# Title\n\nSome `code` and {braces} and {{ handlebars }}.\n";
    assert_eq!(expanded(&[], text), text);
}

#[test]
fn whole_file_keeps_every_line_but_not_the_final_newline() {
    // `take_lines(.., RangeFull)` joins `lines()`: anchor lines stay, the
    // final newline goes, and `\r\n` becomes `\n`.
    assert_eq!(
        listing("```rust\n{{#include ../listings/a.rs}}\n```\n"),
        format!("```rust\n{}\n```\n", LISTING.trim_end())
    );
    let crlf = [("src/crlf.txt", "one\r\ntwo\r\n")];
    assert_eq!(expanded(&crlf, "<{{#include crlf.txt}}>"), "<one\ntwo>");
    // Both empty selectors mean the whole file too.
    assert_eq!(expanded(&crlf, "{{#include crlf.txt:}}"), "one\ntwo");
    assert_eq!(expanded(&crlf, "{{#include crlf.txt::}}"), "one\ntwo");
    // rustdoc_include of a whole file hides nothing.
    assert_eq!(expanded(&crlf, "{{#rustdoc_include crlf.txt}}"), "one\ntwo");
    // An empty file is fine.
    assert_eq!(expanded(&[("src/empty", "")], "[{{#include empty}}]"), "[]");
}

#[test]
fn anchor_takes_its_lines_without_any_anchor_lines() {
    assert_eq!(
        listing("{{#include ../listings/a.rs:main}}"),
        "fn main() {\n    let x = 1;\n    println!(\"{x}\");\n}"
    );
    assert_eq!(
        listing("{{#include ../listings/a.rs:inner}}"),
        "    let x = 1;"
    );
}

#[test]
fn nested_anchor_ends_inside_do_not_stop_the_outer_anchor() {
    let file = "a\nANCHOR: outer\nb\nANCHOR: inner\nc\nANCHOR_END: inner\nd\nANCHOR_END: outer\ne";
    let files = [("src/f", file)];
    assert_eq!(expanded(&files, "{{#include f:outer}}"), "b\nc\nd");
    assert_eq!(expanded(&files, "{{#include f:inner}}"), "c");
}

#[test]
fn anchor_markers_follow_mdbooks_patterns() {
    // `ANCHOR:\s*([\w_-]+)` anywhere in the line; the whole name must match.
    let file =
        "x\n/* ANCHOR:tight */\none\nnot-an-ANCHOR_END: tight2\ntwo\n// ANCHOR_END:   tight\ny";
    let files = [("src/f", file)];
    assert_eq!(expanded(&files, "{{#include f:tight}}"), "one\ntwo");
    let files = [("src/f", "ANCHOR: a-1_b\nkept\nANCHOR_END: a-1_b")];
    assert_eq!(expanded(&files, "{{#include f:a-1_b}}"), "kept");
    // `ANCHOR: a` does not start `ANCHOR: ab`.
    let files = [(
        "src/f",
        "ANCHOR: ab\nno\nANCHOR_END: ab\nANCHOR: a\nyes\nANCHOR_END: a",
    )];
    assert_eq!(expanded(&files, "{{#include f:a}}"), "yes");
}

#[test]
fn an_anchor_never_closed_runs_to_the_end_of_the_file() {
    assert_eq!(
        listing("{{#include ../listings/a.rs:tail}}"),
        "fn tail() {}"
    );
    let files = [("src/f", "a\nANCHOR: open\nb\nc\n")];
    assert_eq!(expanded(&files, "{{#include f:open}}"), "b\nc");
}

#[test]
fn include_takes_only_the_first_section_of_a_repeated_anchor() {
    let files = [(
        "src/f",
        "ANCHOR: r\none\nANCHOR_END: r\ngap\nANCHOR: r\ntwo\nANCHOR_END: r",
    )];
    assert_eq!(expanded(&files, "{{#include f:r}}"), "one");
    // rustdoc_include shows every section.
    assert_eq!(
        expanded(&files, "{{#rustdoc_include f:r}}"),
        "one\n# gap\ntwo"
    );
}

#[test]
fn line_ranges() {
    let files = [("src/f", "l1\nl2\nl3\nl4\nl5\n")];
    let take = |selector: &str| expanded(&files, &format!("{{{{#include f{selector}}}}}"));
    assert_eq!(take(":2"), "l2");
    assert_eq!(take(":2:4"), "l2\nl3\nl4");
    assert_eq!(take(":2:2"), "l2");
    assert_eq!(take("::2"), "l1\nl2");
    assert_eq!(take(":4:"), "l4\nl5");
    assert_eq!(take(":5"), "l5");
    assert_eq!(take(":1:5"), "l1\nl2\nl3\nl4\nl5");
    // `usize`'s parser takes a leading `+`, and so does mdBook.
    assert_eq!(take(":+3"), "l3");
    // Anchor lines are ordinary lines to a range.
    let files = [("src/g", "a\n// ANCHOR: x\nb")];
    assert_eq!(expanded(&files, "{{#include g:1:2}}"), "a\n// ANCHOR: x");
}

#[test]
fn rustdoc_include_hides_the_lines_outside_the_selection() {
    let files = [("src/f", "l1\nl2\nl3\nl4\n")];
    let take = |selector: &str| expanded(&files, &format!("{{{{#rustdoc_include f{selector}}}}}"));
    assert_eq!(take(":2:3"), "# l1\nl2\nl3\n# l4");
    assert_eq!(take(":2"), "# l1\nl2\n# l3\n# l4");
    assert_eq!(take("::1"), "l1\n# l2\n# l3\n# l4");
    assert_eq!(take(":3:"), "# l1\n# l2\nl3\nl4");
}

#[test]
fn rustdoc_include_anchor_hides_the_rest_and_drops_anchor_lines() {
    assert_eq!(
        listing("{{#rustdoc_include ../listings/a.rs:main}}"),
        "# use std::io;\n\
         fn main() {\n    let x = 1;\n    println!(\"{x}\");\n}\n\
         # fn tail() {}"
    );
    assert_eq!(
        listing("{{#rustdoc_include ../listings/a.rs:inner}}"),
        "# use std::io;\n# fn main() {\n    let x = 1;\n#     println!(\"{x}\");\n# }\n# fn tail() {}"
    );
}

#[test]
fn escaped_directives_lose_their_backslash_and_stay() {
    let files = [("src/f", "never read")];
    assert_eq!(
        expanded(&files, "Write \\{{#include f}} to include f.\n"),
        "Write {{#include f}} to include f.\n"
    );
    // The escape runs to the last `}}` on its line, like mdBook's `.*`.
    assert_eq!(
        expanded(
            &files,
            "\\{{#include f}} and {{#include f}}\n{{#include f}}"
        ),
        "{{#include f}} and {{#include f}}\nnever read"
    );
    // Anything may follow an escaped `{{#`.
    assert_eq!(expanded(&[], "\\{{#what ever}}"), "{{#what ever}}");
}

#[test]
fn whitespace_inside_the_braces() {
    let files = [("src/f", "F")];
    assert_eq!(expanded(&files, "{{ #include f }}"), "F");
    assert_eq!(expanded(&files, "{{\t#include\n  f\n}}"), "F");
    // Words after the path are ignored by include.
    assert_eq!(expanded(&files, "{{#include f and more}}"), "F");
    // A stray brace before a directive stays.
    assert_eq!(expanded(&files, "{{{#include f}}"), "{F");
    // `{{` then `#[attribute]` is Rust, not a directive.
    let rust = "fn f() {{\n    #[allow(unused)]\n    let x = 1;\n}}";
    assert_eq!(expanded(&files, rust), rust);
}

#[test]
fn playground_and_title() {
    let files = [("src/p.rs", "fn main() {}")];
    assert_eq!(
        expanded(&files, "{{#playground p.rs editable no_run}}"),
        "```rust,editable,no_run\nfn main() {}\n```\n"
    );
    assert_eq!(
        expanded(&files, "{{#playground p.rs}}"),
        "```rust\nfn main() {}\n```\n"
    );
    assert_eq!(expanded(&[], "{{#title Another title}}\n# Hi"), "\n# Hi");
}

#[test]
fn included_files_are_expanded_relative_to_themselves() {
    let files = [
        ("src/parts/one.md", "one {{#include two/two.md}} one"),
        (
            "src/parts/two/two.md",
            "two {{#include ../code.rs:2}} \\{{#include no}}",
        ),
        // Joined, never normalised, like mdBook's paths.
        ("src/parts/two/../code.rs", "first\nsecond\n"),
    ];
    let (text, read) = expand_with(&files, "{{#include parts/one.md}}").unwrap();
    assert_eq!(text, "one two second {{#include no}} one");
    assert_eq!(
        read,
        [
            "src/parts/one.md",
            "src/parts/two/two.md",
            "src/parts/two/../code.rs"
        ]
        .map(PathBuf::from)
    );
}

#[test]
fn read_files_are_reported_once() {
    let files = [("src/f", "F")];
    let (text, read) = expand_with(&files, "{{#include f}}{{#include f:1}}").unwrap();
    assert_eq!(text, "FF");
    assert_eq!(read, [PathBuf::from("src/f")]);
}

#[test]
fn missing_file_names_chapter_and_directive() {
    let err = error(&[], "text\n{{#include ../listings/gone.rs:main}}\n");
    assert_eq!(err.chapter, Path::new("src/chapter.md"));
    assert_eq!(err.directive, "{{#include ../listings/gone.rs:main}}");
    assert!(err.within.is_empty());
    assert!(matches!(
        &err.problem,
        Problem::Unreadable { path, .. } if path == Path::new("src/../listings/gone.rs")
    ));
    let message = err.to_string();
    assert!(message.starts_with("src/chapter.md: `{{#include ../listings/gone.rs:main}}`: "));
    assert!(message.contains("cannot read src/../listings/gone.rs"));
}

#[test]
fn missing_anchor_is_an_error() {
    for directive in [
        "{{#include ../listings/a.rs:mian}}",
        "{{#rustdoc_include ../listings/a.rs:mian}}",
    ] {
        let err = error(&[("src/../listings/a.rs", LISTING)], directive);
        assert_eq!(err.directive, directive);
        assert_eq!(
            err.problem,
            Problem::MissingAnchor {
                path: PathBuf::from("src/../listings/a.rs"),
                anchor: "mian".to_owned()
            }
        );
        assert!(err.to_string().contains("no `ANCHOR: mian` line"), "{err}");
    }
    // An `ANCHOR_END` alone does not make an anchor.
    let err = error(&[("src/f", "a\nANCHOR_END: x\nb")], "{{#include f:x}}");
    assert!(matches!(err.problem, Problem::MissingAnchor { .. }));
}

#[test]
fn every_broken_directive_is_reported() {
    let files = [("src/f", "ANCHOR: a\nA\nANCHOR_END: a")];
    let text = "{{#include f:b}}\n{{#include f:a}}\n{{#include g}}\n{{#inclde f}}\n{{#include f";
    let errors = errors(&files, text);
    let directives: Vec<&str> = errors.iter().map(|e| e.directive.as_str()).collect();
    assert_eq!(
        directives,
        [
            "{{#include f:b}}",
            "{{#include g}}",
            "{{#inclde f}}",
            "{{#include f"
        ]
    );
}

#[test]
fn errors_in_included_files_say_where() {
    let files = [
        ("src/inc/outer.md", "{{#include inner.rs:nope}}"),
        ("src/inc/inner.rs", "x"),
    ];
    let err = error(&files, "{{#include inc/outer.md}}");
    assert_eq!(err.within, [PathBuf::from("src/inc/outer.md")]);
    assert_eq!(err.directive, "{{#include inner.rs:nope}}");
    assert_eq!(
        err.to_string(),
        "src/chapter.md, in included file src/inc/outer.md: `{{#include inner.rs:nope}}`: \
         there is no `ANCHOR: nope` line in src/inc/inner.rs (mdBook would include nothing)"
    );
}

#[test]
fn invalid_or_out_of_range_selectors_are_errors() {
    let files = [("src/f", "l1\nl2\nl3\n")];
    for selector in [
        // Line 0, backwards or empty ranges, an end that is not a number
        // (mdBook reads `2:x` as `2:`, `::x` as the whole file).
        ":0", ":0:2", ":3:2", "::0", ":2:x", "::x", // Fields mdBook ignores.
        ":1:2:3", ":2::", ":a:b", ":a:", ":::",
        // Lines past the end (mdBook would include less, or nothing).
        ":4", ":4:", ":2:4", "::4",
    ] {
        let directive = format!("{{{{#include f{selector}}}}}");
        let err = error(&files, &directive);
        assert_eq!(err.directive, directive);
        assert!(
            matches!(
                err.problem,
                Problem::BadSelector { .. } | Problem::OutOfRange { .. }
            ),
            "{selector}: {err}"
        );
        let rustdoc = format!("{{{{#rustdoc_include f{selector}}}}}");
        error(&files, &rustdoc);
    }
    let err = error(&files, "{{#include f:2:9}}");
    assert_eq!(
        err.to_string(),
        "src/chapter.md: `{{#include f:2:9}}`: lines `:2:9` are out of range: src/f has 3 lines"
    );
}

#[test]
fn unknown_and_malformed_directives_are_errors() {
    let files = [("src/f", "F")];
    let err = error(&files, "{{#inclde f}}");
    assert_eq!(err.problem, Problem::UnknownDirective);
    assert_eq!(err.directive, "{{#inclde f}}");
    for text in [
        "{{#include}}",
        "{{#include f",
        "{{ # include f}}",
        "a {{#include f}b}}",
    ] {
        let err = error(&files, text);
        assert_eq!(err.problem, Problem::Malformed, "{text}");
    }
    assert_eq!(
        error(&files, "{{#include   }}").problem,
        Problem::MissingPath
    );
    assert_eq!(error(&files, "{{#playpen f}}").problem, Problem::Renamed);
    // In an included file too.
    let files = [("src/f", "{{#nope x}}")];
    let err = error(&files, "{{#include f}}");
    assert_eq!(err.within, [PathBuf::from("src/f")]);
}

#[test]
fn recursion_stops_at_mdbooks_depth_limit() {
    // A chain of files n.md including n+1.md: the chapter is depth 0, so
    // file n is read at depth n and its directives must be at most
    // MAX_DEPTH - 1 deep.
    let chain: Vec<(String, String)> = (1..=MAX_DEPTH + 1)
        .map(|n| {
            (
                format!("src/{n}.md"),
                format!("{n} {{{{#include {}.md}}}}", n + 1),
            )
        })
        .collect();
    let mut files: Vec<(&str, &str)> = chain
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    // File MAX_DEPTH holds no directive: fine.
    let last = format!("src/{MAX_DEPTH}.md");
    files.retain(|(path, _)| *path != last);
    files.push((&last, "end"));
    let text = expanded(&files, "{{#include 1.md}}");
    assert!(text.starts_with("1 2 3 "), "{text}");
    assert!(text.ends_with(&format!("{} end", MAX_DEPTH - 1)), "{text}");

    // One more level is too deep, even for an escaped directive.
    files.retain(|(path, _)| *path != last);
    files.push((&last, "\\{{#include x}}"));
    let err = error(&files, "{{#include 1.md}}");
    assert_eq!(err.problem, Problem::TooDeep);
    assert_eq!(err.within.len(), MAX_DEPTH);

    // A file including itself.
    let err = error(
        &[("src/self.md", "{{#include self.md}}")],
        "{{#include self.md}}",
    );
    assert_eq!(err.problem, Problem::TooDeep);
}

#[test]
fn summary_links_in_order_skipping_drafts_comments_and_code() {
    let summary = "\
# Summary

<!-- [Commented](commented.md) -->
[Intro](intro.md)

---

# Part one

- [First](first.md)
    - [Nested](sub/nested.md \"with a title\")
    - [Draft]()
- [Spaced](<with space.md>)
- [Percent](with%20percent.md)
- [Parens [and brackets]](par\\(en\\).md)

```md
[In code](code.md)
```

`[In a span](span.md)` ![An image](image.png)

[Suffix](suffix.md)
";
    let found: Vec<(String, Option<PathBuf>)> = summary::links(summary)
        .into_iter()
        .map(|link| (link.title, link.location))
        .collect();
    let some = |p: &str| Some(PathBuf::from(p));
    assert_eq!(
        found,
        [
            ("Intro".to_owned(), some("intro.md")),
            ("First".to_owned(), some("first.md")),
            ("Nested".to_owned(), some("sub/nested.md")),
            ("Draft".to_owned(), None),
            ("Spaced".to_owned(), some("with space.md")),
            ("Percent".to_owned(), some("with percent.md")),
            ("Parens [and brackets]".to_owned(), some("par(en).md")),
            ("Suffix".to_owned(), some("suffix.md")),
        ]
    );
}
