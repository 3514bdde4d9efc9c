//! SVG charts, written by hand: a line chart (a figure against the number of
//! clients, one line per server) and a horizontal bar chart (one group of
//! bars per server). Plain SVG 1.1 with axes, labels and a legend, no
//! scripts and no fonts beyond the reader's sans-serif.

use std::fmt::Write;

/// One named line, or one bar per category: a value per category, `None`
/// where there is none.
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// Colours that stay apart from each other, and dashes for when they run out.
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];
const DASHES: [&str; 3] = ["", "6 3", "2 3"];

fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

fn dash(i: usize) -> &'static str {
    DASHES[(i / COLOURS.len()) % DASHES.len()]
}

/// Text safe inside SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A tick's label without the zeros a round number does not need:
/// "1.00 ms" -> "1 ms", "0.10 s" -> "0.1 s", "25,000" stays.
fn tidy(label: String) -> String {
    let (number, unit) = label.split_once(' ').unwrap_or((&label, ""));
    let number = if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    };
    if unit.is_empty() {
        number.to_string()
    } else {
        format!("{number} {unit}")
    }
}

/// A round number at or above `max`, and the step of its ticks: 1, 2 or 5
/// times a power of ten, in at most 5 steps.
fn nice(max: f64) -> (f64, f64) {
    if !(max.is_finite() && max > 0.0) {
        return (1.0, 0.2);
    }
    let raw = max / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    ((max / step).ceil() * step, step)
}

fn open(out: &mut String, width: f64, height: f64, title: &str) {
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" \
         viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(out, "<title>{}</title>", escape(title));
    let _ = writeln!(
        out,
        "<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>"
    );
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        width / 2.0,
        escape(title)
    );
}

/// A chart that says there is nothing to draw yet.
pub fn empty(title: &str, why: &str) -> String {
    let mut out = String::new();
    open(&mut out, 640.0, 120.0, title);
    let _ = writeln!(
        out,
        "<text x=\"320\" y=\"70\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n</svg>",
        escape(why)
    );
    out
}

/// A line per series over the categories `xs`, evenly spaced, on a linear
/// axis from zero.
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[String],
    series: &[Series],
    format: fn(f64) -> String,
) -> String {
    draw_lines(title, x_label, y_label, xs, series, format, false)
}

/// The same on a logarithmic axis, a tick at every power of ten, for
/// values that span several of them.
pub fn lines_log(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[String],
    series: &[Series],
    format: fn(f64) -> String,
) -> String {
    draw_lines(title, x_label, y_label, xs, series, format, true)
}

fn draw_lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[String],
    series: &[Series],
    format: fn(f64) -> String,
    log: bool,
) -> String {
    let (width, height) = (740.0, 440.0);
    let (left, right, top, bottom) = (80.0, 560.0, 45.0, 380.0);
    let mut out = String::new();
    open(&mut out, width, height, title);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .filter(|v| v.is_finite() && (!log || *v > 0.0))
        .collect();
    let max = values.iter().copied().fold(0.0f64, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let (lo, hi) = if min.is_finite() && max > 0.0 {
        let lo = min.log10().floor();
        (lo, max.log10().ceil().max(lo + 1.0))
    } else {
        (-3.0, 0.0)
    };
    let (top_value, step) = nice(max);
    let y = |v: f64| {
        let share = if log {
            ((v.max(1e-300).log10() - lo) / (hi - lo)).clamp(0.0, 1.0)
        } else {
            v / top_value
        };
        bottom - share * (bottom - top)
    };
    let ticks: Vec<f64> = if log {
        (lo as i32..=hi as i32).map(|p| 10f64.powi(p)).collect()
    } else {
        (0..)
            .map(|i| i as f64 * step)
            .take_while(|t| *t <= top_value + step / 2.0)
            .collect()
    };
    let y_label = if log {
        format!("{y_label} (logarithmic scale)")
    } else {
        y_label.to_string()
    };
    let x = |i: usize| {
        if xs.len() < 2 {
            (left + right) / 2.0
        } else {
            left + 20.0 + i as f64 * (right - left - 40.0) / (xs.len() - 1) as f64
        }
    };
    // Grid and y ticks.
    for v in ticks {
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" y1=\"{0:.1}\" x2=\"{right}\" y2=\"{0:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{1}\" y=\"{2:.1}\" text-anchor=\"end\">{3}</text>",
            y(v),
            left - 6.0,
            y(v) + 4.0,
            escape(&tidy(format(v)))
        );
    }
    // Axes and x ticks.
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"black\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"black\"/>"
    );
    for (i, label) in xs.iter().enumerate() {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"{bottom}\" x2=\"{0:.1}\" y2=\"{1}\" stroke=\"black\"/>\
             <text x=\"{0:.1}\" y=\"{2}\" text-anchor=\"middle\">{3}</text>",
            x(i),
            bottom + 5.0,
            bottom + 19.0,
            escape(label)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        (left + right) / 2.0,
        bottom + 40.0,
        escape(x_label)
    );
    let _ = writeln!(
        out,
        "<text transform=\"translate(18 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        (top + bottom) / 2.0,
        escape(&y_label)
    );
    // The lines, broken where a value is missing, with a dot on each value.
    for (n, s) in series.iter().enumerate() {
        let mut run: Vec<String> = Vec::new();
        let mut runs = Vec::new();
        for (i, value) in s.values.iter().enumerate() {
            match value {
                Some(v) => run.push(format!("{:.1},{:.1}", x(i), y(*v))),
                None => runs.push(std::mem::take(&mut run)),
            }
        }
        runs.push(run);
        for points in runs.iter().filter(|r| !r.is_empty()) {
            let _ = writeln!(
                out,
                "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\" points=\"{}\"/>",
                colour(n),
                dash(n),
                points.join(" ")
            );
        }
        for (i, value) in s.values.iter().enumerate() {
            if let Some(v) = value {
                let _ = writeln!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\"/>",
                    x(i),
                    y(*v),
                    colour(n)
                );
            }
        }
    }
    legend(&mut out, right + 20.0, top, series, true);
    out.push_str("</svg>\n");
    out
}

fn legend(out: &mut String, x: f64, top: f64, series: &[Series], line: bool) {
    for (n, s) in series.iter().enumerate() {
        let y = top + 8.0 + n as f64 * 20.0;
        if line {
            let _ = writeln!(
                out,
                "<line x1=\"{x}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\"/>",
                x + 24.0,
                colour(n),
                dash(n)
            );
        } else {
            let _ = writeln!(
                out,
                "<rect x=\"{x}\" y=\"{}\" width=\"24\" height=\"10\" fill=\"{}\"/>",
                y - 5.0,
                colour(n)
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            x + 30.0,
            y + 4.0,
            escape(&s.name)
        );
    }
}

/// Horizontal bars: a group per category, a bar per series, the value
/// written at its end. `log`: a logarithmic axis, for values that span
/// several powers of ten.
pub fn bars(
    title: &str,
    value_label: &str,
    categories: &[String],
    series: &[Series],
    log: bool,
    format: fn(f64) -> String,
) -> String {
    let bar = 14.0;
    let group = bar * series.len().max(1) as f64 + 12.0;
    let (left, right, top) = (190.0, 600.0, 45.0 + 20.0 * series.len() as f64);
    let bottom = top + group * categories.len() as f64;
    let (width, height) = (740.0, bottom + 50.0);
    let mut out = String::new();
    open(&mut out, width, height, title);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let max = values.iter().copied().fold(0.0f64, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    // Where a value falls, from 0 (the axis) to 1 (the right end).
    let (ticks, place): (Vec<f64>, Box<dyn Fn(f64) -> f64>) = if log {
        let lo = if min.is_finite() {
            min.log10().floor()
        } else {
            -3.0
        };
        let hi = if max > 0.0 { max.log10().ceil() } else { 0.0 }.max(lo + 1.0);
        let ticks = (lo as i32..=hi as i32).map(|p| 10f64.powi(p)).collect();
        (
            ticks,
            Box::new(move |v: f64| ((v.log10() - lo) / (hi - lo)).clamp(0.0, 1.0)),
        )
    } else {
        let (top_value, step) = nice(max);
        let ticks = (0..)
            .map(|i| i as f64 * step)
            .take_while(|t| *t <= top_value + step / 2.0)
            .collect();
        (
            ticks,
            Box::new(move |v: f64| (v / top_value).clamp(0.0, 1.0)),
        )
    };
    let x = |v: f64| left + place(v) * (right - left);
    for t in &ticks {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{bottom}\" stroke=\"#ddd\"/>\
             <text x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">{2}</text>",
            x(*t),
            bottom + 16.0,
            escape(&tidy(format(*t)))
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        (left + right) / 2.0,
        bottom + 38.0,
        escape(&if log {
            format!("{value_label} (logarithmic scale)")
        } else {
            value_label.to_string()
        })
    );
    for (c, category) in categories.iter().enumerate() {
        let y0 = top + c as f64 * group + 6.0;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            left - 8.0,
            y0 + group / 2.0 - 2.0,
            escape(category)
        );
        for (n, s) in series.iter().enumerate() {
            let y = y0 + n as f64 * bar;
            match s.values.get(c).copied().flatten() {
                Some(v) if v.is_finite() && v > 0.0 => {
                    let end = x(v).max(left + 1.0);
                    let _ = writeln!(
                        out,
                        "<rect x=\"{left}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"/>\
                         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\">{}</text>",
                        end - left,
                        bar - 2.0,
                        colour(n),
                        end + 4.0,
                        y + bar - 4.0,
                        escape(&format(v))
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" fill=\"#777\">no figure</text>",
                        left + 4.0,
                        y + bar - 4.0
                    );
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"black\"/>\
         <line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"black\"/>"
    );
    legend(&mut out, left, 38.0, series, false);
    out.push_str("</svg>\n");
    out
}

/// One horizontal bar made of parts, and a mark beside it.
pub struct Stack {
    pub label: String,
    /// A value per part, in the order of the parts' names.
    pub parts: Vec<Option<f64>>,
    /// Where the mark goes, if anywhere.
    pub mark: Option<f64>,
}

/// Horizontal stacked bars, one per row, on a linear axis from zero: the
/// parts laid end to end in their colours, the total written at the end,
/// and each row's mark (a black tick) where `mark_name` says.
pub fn stacked(
    title: &str,
    value_label: &str,
    part_names: &[&str],
    mark_name: &str,
    rows: &[Stack],
    format: fn(f64) -> String,
) -> String {
    let bar = 16.0;
    let (left, right, top) = (190.0, 640.0, 45.0 + 20.0 * (part_names.len() + 1) as f64);
    let bottom = top + bar * rows.len() as f64 + 8.0;
    let (width, height) = (740.0, bottom + 50.0);
    let mut out = String::new();
    open(&mut out, width, height, title);
    let max = rows
        .iter()
        .map(|r| {
            let total: f64 = r.parts.iter().flatten().sum();
            total.max(r.mark.unwrap_or(0.0))
        })
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let (top_value, step) = nice(max);
    let x = |v: f64| left + (v / top_value).clamp(0.0, 1.0) * (right - left);
    let mut t = 0.0;
    while t <= top_value + step / 2.0 {
        let _ = writeln!(
            out,
            "<line x1=\"{0:.1}\" y1=\"{top}\" x2=\"{0:.1}\" y2=\"{bottom}\" stroke=\"#ddd\"/>\
             <text x=\"{0:.1}\" y=\"{1}\" text-anchor=\"middle\">{2}</text>",
            x(t),
            bottom + 16.0,
            escape(&tidy(format(t)))
        );
        t += step;
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
        (left + right) / 2.0,
        bottom + 38.0,
        escape(value_label)
    );
    for (i, row) in rows.iter().enumerate() {
        let y = top + 4.0 + i as f64 * bar;
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">{}</text>",
            left - 8.0,
            y + bar - 5.0,
            escape(&row.label)
        );
        let mut at = 0.0;
        for (n, part) in row.parts.iter().enumerate() {
            let Some(v) = part.filter(|v| v.is_finite() && *v > 0.0) else {
                continue;
            };
            let _ = writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"/>",
                x(at),
                x(at + v) - x(at),
                bar - 3.0,
                colour(n)
            );
            at += v;
        }
        if at > 0.0 {
            // Past the bar, and past its mark.
            let end = at.max(row.mark.filter(|m| m.is_finite()).unwrap_or(0.0));
            let _ = writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
                x(end) + 5.0,
                y + bar - 5.0,
                escape(&format(at))
            );
        } else {
            let _ = writeln!(
                out,
                "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" fill=\"#777\">no figure</text>",
                left + 4.0,
                y + bar - 5.0
            );
        }
        if let Some(m) = row.mark.filter(|m| m.is_finite()) {
            let _ = writeln!(
                out,
                "<line x1=\"{0:.1}\" y1=\"{1:.1}\" x2=\"{0:.1}\" y2=\"{2:.1}\" stroke=\"black\" stroke-width=\"2\"/>",
                x(m),
                y - 1.0,
                y + bar - 2.0
            );
        }
    }
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"black\"/>\
         <line x1=\"{left}\" y1=\"{bottom}\" x2=\"{right}\" y2=\"{bottom}\" stroke=\"black\"/>"
    );
    let names: Vec<Series> = part_names
        .iter()
        .map(|n| Series {
            name: n.to_string(),
            values: Vec::new(),
        })
        .collect();
    legend(&mut out, left, 38.0, &names, false);
    let y = 38.0 + 8.0 + part_names.len() as f64 * 20.0;
    let _ = writeln!(
        out,
        "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\" stroke-width=\"2\"/>\
         <text x=\"{3}\" y=\"{4}\">{5}</text>",
        left + 12.0,
        y - 6.0,
        y + 6.0,
        left + 30.0,
        y + 4.0,
        escape(mark_name)
    );
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_axes() {
        assert_eq!(nice(23_456.0), (25_000.0, 5_000.0));
        assert_eq!(nice(9.0), (10.0, 2.0));
        assert_eq!(nice(0.0), (1.0, 0.2));
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tidy("1.00 ms".into()), "1 ms");
        assert_eq!(tidy("0.10 s".into()), "0.1 s");
        assert_eq!(tidy("25,000".into()), "25,000");
        assert_eq!(tidy("0.0 µs".into()), "0 µs");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
