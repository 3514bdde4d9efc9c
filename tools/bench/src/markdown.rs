//! A Markdown table from a header and rows, so that the table writers say
//! what goes in a table rather than how its pipes line up.
//!
//! The tables are not padded to a common width (the book renders them;
//! nobody reads the source), so a row is its cells between pipes. The
//! delimiter row is as wide as each heading (at least three characters,
//! or as wide as the column asks), with a colon on the right of the
//! columns of figures.

/// One column: its heading, and how it is aligned.
pub struct Column {
    head: String,
    right: bool,
    /// The width of the column's part of the delimiter row.
    rule: usize,
}

/// A column of text, aligned left.
pub fn left(head: impl Into<String>) -> Column {
    Column::new(head.into(), false)
}

/// A column of figures, aligned right.
pub fn right(head: impl Into<String>) -> Column {
    Column::new(head.into(), true)
}

impl Column {
    fn new(head: String, right: bool) -> Column {
        let rule = head.chars().count().max(3);
        Column { head, right, rule }
    }

    /// A delimiter `width` characters wide, however wide the heading.
    pub fn rule_width(mut self, width: usize) -> Column {
        self.rule = width.max(3);
        self
    }
}

/// A table being written: the header first, then a row at a time.
pub struct Table {
    text: String,
    columns: usize,
}

impl Table {
    pub fn new(columns: impl IntoIterator<Item = Column>) -> Table {
        let columns: Vec<Column> = columns.into_iter().collect();
        let mut table = Table {
            text: String::new(),
            columns: columns.len(),
        };
        table.line(columns.iter().map(|c| c.head.as_str()));
        let rules: Vec<String> = columns
            .iter()
            .map(|c| {
                if c.right {
                    "-".repeat(c.rule - 1) + ":"
                } else {
                    "-".repeat(c.rule)
                }
            })
            .collect();
        table.line(rules.iter().map(String::as_str));
        table
    }

    /// A row: a cell for every column.
    pub fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let cells: Vec<S> = cells.into_iter().collect();
        assert_eq!(
            cells.len(),
            self.columns,
            "a row with the wrong number of cells"
        );
        self.line(cells.iter().map(AsRef::as_ref));
    }

    /// A row without figures: the cells given, then every other column
    /// blank. Blank cells (and empty ones given) are written `| |`, where
    /// [`row`](Table::row) writes every cell as it is, an empty one too
    /// (`|  |`).
    pub fn row_without_figures(&mut self, cells: &[&str]) {
        assert!(cells.len() <= self.columns, "a row with too many cells");
        let blanks = self.columns - cells.len();
        for cell in cells.iter().copied().chain(std::iter::repeat_n("", blanks)) {
            self.text += "| ";
            if !cell.is_empty() {
                self.text += cell;
                self.text += " ";
            }
        }
        self.text += "|\n";
    }

    /// Every cell as it is, between pipes.
    fn line<'a>(&mut self, cells: impl Iterator<Item = &'a str>) {
        for cell in cells {
            self.text += "| ";
            self.text += cell;
            self.text += " ";
        }
        self.text += "|\n";
    }

    /// The table's Markdown, a line for the header, the delimiter and
    /// every row.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_delimiter_and_rows() {
        let mut t = Table::new([left("Server"), right("Requests/s"), right("p99")]);
        t.row(["`linear`", "12,345", "1.20 ms"]);
        t.row(vec![String::from("nginx"), String::new(), "—".into()]);
        assert_eq!(
            t.finish(),
            "| Server | Requests/s | p99 |\n\
             | ------ | ---------: | --: |\n\
             | `linear` | 12,345 | 1.20 ms |\n\
             | nginx |  | — |\n"
        );
    }

    #[test]
    fn delimiters_are_as_wide_as_their_headings_in_characters() {
        let t = Table::new([
            left("ab"),
            right("Python ÷ Rust"),
            right("1024").rule_width(3),
            left("x").rule_width(5),
        ]);
        assert_eq!(
            t.finish(),
            "| ab | Python ÷ Rust | 1024 | x |\n| --- | ------------: | --: | ----- |\n"
        );
    }

    #[test]
    fn rows_without_figures_leave_the_rest_blank() {
        let mut t = Table::new([
            left("Server"),
            left("Client"),
            right("Rate"),
            right("Failed"),
        ]);
        t.row_without_figures(&["`epoll`", "", "not in this build yet"]);
        t.row_without_figures(&["`linear`"]);
        let text = t.finish();
        let rows: Vec<&str> = text.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| `epoll` | | not in this build yet | |",
                "| `linear` | | | |"
            ]
        );
    }

    #[test]
    #[should_panic(expected = "wrong number of cells")]
    fn a_row_has_a_cell_for_every_column() {
        Table::new([left("Server"), right("Rate")]).row(["`linear`"]);
    }
}
