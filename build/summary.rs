//! Finds the chapters `SUMMARY.md` links, in the order mdBook lists them.
//!
//! mdBook's own parser (`mdbook-summary`'s `parse_summary`) runs
//! pulldown-cmark and takes every link outside the title and part headings
//! as a chapter: prefix chapters, the numbered chapters with their nested
//! lists, suffix chapters. A link with an empty destination is a draft
//! chapter, with no file. `%20` in a destination stands for a space.
//!
//! The build script cannot depend on pulldown-cmark, so this is a small
//! scanner for the Markdown a summary uses: inline links (`[Title](path)`,
//! `[Title](<path>)`, with or without a link title), skipping HTML comments,
//! headings, code spans, fenced code and images. `tests/book.rs` checks that
//! it finds the same chapters as mdBook's parser on the real book.

use std::path::PathBuf;

/// One link of the summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The link text, as written.
    pub title: String,
    /// The chapter's file relative to the book's source directory, or
    /// `None` for a draft chapter (`[Title]()`).
    pub location: Option<PathBuf>,
}

/// Every link in `summary`, in document order (which is mdBook's
/// depth-first order).
pub fn links(summary: &str) -> Vec<Link> {
    let text = without_comments(summary);
    let mut links = Vec::new();
    let mut paragraph = String::new();
    let mut fence: Option<(char, usize)> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some((mark, len)) = fence {
            let run = trimmed.chars().take_while(|&c| c == mark).count();
            if run >= len && trimmed[run * mark.len_utf8()..].trim().is_empty() {
                fence = None;
            }
            continue;
        }
        let run = |mark: char| trimmed.chars().take_while(|&c| c == mark).count();
        if run('`') >= 3 {
            fence = Some(('`', run('`')));
            continue;
        }
        if run('~') >= 3 {
            fence = Some(('~', run('~')));
            continue;
        }
        if is_heading(trimmed) {
            continue;
        }
        paragraph.push_str(line);
        paragraph.push('\n');
    }
    scan_inline(&paragraph, &mut links);
    links
}

fn without_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        match rest[start + 4..].find("-->") {
            Some(end) => rest = &rest[start + 4 + end + 3..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// An ATX heading: up to six `#` followed by a space or the end of the line.
fn is_heading(line: &str) -> bool {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    (1..=6).contains(&hashes)
        && line[hashes..]
            .chars()
            .next()
            .is_none_or(char::is_whitespace)
}

fn scan_inline(text: &str, links: &mut Vec<Link>) {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i].1 {
            '\\' => i += 2,
            '`' => i = skip_code_span(&chars, i),
            '!' if chars.get(i + 1).is_some_and(|&(_, c)| c == '[') => {
                // An image: not a chapter. Skip its text (and target, if any).
                i = match parse_link(text, &chars, i + 1) {
                    Some((_, _, next)) => next,
                    None => i + 2,
                };
            }
            '[' => match parse_link(text, &chars, i) {
                Some((title, destination, next)) => {
                    let destination = unescape(&destination).replace("%20", " ");
                    links.push(Link {
                        title,
                        location: (!destination.is_empty()).then(|| PathBuf::from(destination)),
                    });
                    i = next;
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
}

/// The index after the code span opening at `i`, or after its backticks if
/// it is never closed.
fn skip_code_span(chars: &[(usize, char)], i: usize) -> usize {
    let run = chars[i..].iter().take_while(|&&(_, c)| c == '`').count();
    let mut j = i + run;
    while j < chars.len() {
        if chars[j].1 == '`' {
            let close = chars[j..].iter().take_while(|&&(_, c)| c == '`').count();
            if close == run {
                return j + close;
            }
            j += close;
        } else {
            j += 1;
        }
    }
    i + run
}

/// Parses `[text](destination "title")` starting at the `[` at `open`:
/// returns the text, the raw destination and the index after the `)`.
fn parse_link(text: &str, chars: &[(usize, char)], open: usize) -> Option<(String, String, usize)> {
    let byte = |k: usize| chars.get(k).map_or(text.len(), |&(b, _)| b);
    // The matching `]`.
    let mut depth = 0;
    let mut k = open;
    let close = loop {
        let &(_, c) = chars.get(k)?;
        match c {
            '\\' => k += 1,
            '`' => {
                k = skip_code_span(chars, k);
                continue;
            }
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    break k;
                }
            }
            _ => {}
        }
        k += 1;
    };
    let title = text[byte(open + 1)..byte(close)].to_owned();
    if chars.get(close + 1).map(|&(_, c)| c) != Some('(') {
        return None;
    }
    let mut k = skip_blank(chars, close + 2);
    let destination;
    if chars.get(k).map(|&(_, c)| c) == Some('<') {
        let start = k + 1;
        loop {
            let &(_, c) = chars.get(k + 1)?;
            k += 1;
            match c {
                '\\' => k += 1,
                '>' => break,
                '\n' | '<' => return None,
                _ => {}
            }
        }
        destination = text[byte(start)..byte(k)].to_owned();
        k += 1;
    } else {
        let start = k;
        let mut parens = 0;
        while let Some(&(_, c)) = chars.get(k) {
            match c {
                '\\' => k += 1,
                '(' => parens += 1,
                ')' if parens == 0 => break,
                ')' => parens -= 1,
                c if c.is_whitespace() || c.is_control() => break,
                _ => {}
            }
            k += 1;
        }
        destination = text[byte(start)..byte(k.min(chars.len()))].to_owned();
    }
    k = skip_blank(chars, k);
    // An optional link title.
    if let Some(&(_, quote)) = chars.get(k) {
        let closing = match quote {
            '"' => Some('"'),
            '\'' => Some('\''),
            '(' => Some(')'),
            _ => None,
        };
        if let Some(closing) = closing {
            k += 1;
            loop {
                let &(_, c) = chars.get(k)?;
                k += 1;
                if c == '\\' {
                    k += 1;
                } else if c == closing {
                    break;
                }
            }
            k = skip_blank(chars, k);
        }
    }
    (chars.get(k).map(|&(_, c)| c) == Some(')')).then_some((title, destination, k + 1))
}

fn skip_blank(chars: &[(usize, char)], mut k: usize) -> usize {
    while chars
        .get(k)
        .is_some_and(|&(_, c)| c == ' ' || c == '\t' || c == '\n')
    {
        k += 1;
    }
    k
}

/// Backslash escapes and the few character references a path might use.
fn unescape(destination: &str) -> String {
    let mut out = String::with_capacity(destination.len());
    let mut chars = destination.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(char::is_ascii_punctuation) {
            out.extend(chars.next());
        } else {
            out.push(c);
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}
