//! SVG charts, drawn with plotters' SVG backend: line charts (a figure
//! against the number of clients or a percentile, a line per server, in
//! small multiples by family of model) and horizontal bar charts (a group
//! of bars per server, or bars made of parts). Plain SVG with a title,
//! axes, labels and a legend, no scripts and no fonts beyond the reader's
//! sans-serif. Each line has its own colour and its own marker, so that
//! the lines stay apart in grey too.

use std::error::Error;

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One named line, or one bar per category: a value per category, `None`
/// where there is none.
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// One of the small multiples: its title and its lines.
pub struct Panel<'a> {
    pub title: &'a str,
    pub series: &'a [Series],
}

/// One horizontal bar made of parts, and a mark beside it.
pub struct Stack {
    pub label: String,
    /// A value per part, in the order of the parts' names.
    pub parts: Vec<Option<f64>>,
    /// Where the mark goes, if anywhere.
    pub mark: Option<f64>,
}

/// The book's column is 750 px wide; the charts are a little narrower.
const WIDTH: u32 = 740;
const FONT: &str = "sans-serif";
/// Text sizes as plotters takes them: it writes each at 0.8 times the size
/// given, so these come out at about 15, 12 and 11 px.
const TITLE: f64 = 18.6;
const CAPTION: f64 = 15.0;
const LABEL: f64 = 13.6;
const GRID: RGBColor = RGBColor(221, 221, 221);
const GREY: RGBColor = RGBColor(119, 119, 119);

/// Colours that stay apart from each other, also for readers who do not
/// tell red from green (Okabe and Ito's, with a dark red for the yellow).
const COLOURS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(230, 159, 0),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(136, 34, 85),
];

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

type Drawn = Result<(), Box<dyn Error>>;

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

/// A value axis: where a value goes (a linear position), its ticks, and
/// what a tick says. Logarithmic axes place the logarithm of the value.
struct Axis {
    log: bool,
    low: f64,
    high: f64,
    ticks: Vec<f64>,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>, log: bool) -> Axis {
        let values: Vec<f64> = values
            .filter(|v| v.is_finite() && (!log || *v > 0.0))
            .collect();
        let max = values.iter().copied().fold(0.0f64, f64::max);
        if log {
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let (low, high) = if min.is_finite() && max > 0.0 {
                let low = min.log10().floor();
                (low, max.log10().ceil().max(low + 1.0))
            } else {
                (-3.0, 0.0)
            };
            let ticks = (low as i32..=high as i32).map(f64::from).collect();
            Axis {
                log,
                low,
                high,
                ticks,
            }
        } else {
            let (top, step) = nice(max);
            let ticks = (0..)
                .map(|i| i as f64 * step)
                .take_while(|t| *t <= top + step / 2.0)
                .collect();
            Axis {
                log,
                low: 0.0,
                high: top,
                ticks,
            }
        }
    }

    fn place(&self, v: f64) -> f64 {
        if self.log {
            v.max(1e-300).log10().clamp(self.low, self.high)
        } else {
            v.clamp(self.low, self.high)
        }
    }

    fn value(&self, position: f64) -> f64 {
        if self.log {
            10f64.powf(position)
        } else {
            position
        }
    }

    fn describe(&self, label: &str) -> String {
        if self.log {
            format!("{label} (logarithmic scale)")
        } else {
            label.to_string()
        }
    }
}

/// A linear axis from `range.start` to `range.end` with its ticks exactly
/// at `keys` (the categories, or the round values of an [`Axis`]).
struct Ticks {
    range: Range<f64>,
    keys: Vec<f64>,
}

impl Ranged for Ticks {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let share = (value - self.range.start) / (self.range.end - self.range.start);
        limit.0 + (f64::from(limit.1 - limit.0) * share).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        self.keys.clone()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

/// Draws a chart `height` px high into an SVG document with `title` at its
/// top (and as its `<title>`, for readers that cannot see it).
fn svg(
    title: &str,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Drawn,
) -> String {
    let mut out = String::new();
    let drawn = {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        (|| -> Drawn {
            root.fill(&WHITE)?;
            let body = root.titled(title, (FONT, TITLE).into_font().style(FontStyle::Bold))?;
            draw(&body)?;
            root.present()?;
            Ok(())
        })()
    };
    match drawn {
        Ok(()) => with_title(out, title),
        Err(e) => empty(title, &format!("the chart could not be drawn: {e}")),
    }
}

/// Text safe inside SVG.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The document with a `<title>` right after its opening tag.
fn with_title(svg: String, title: &str) -> String {
    match svg
        .find("<svg")
        .and_then(|at| svg[at..].find('>').map(|end| at + end + 1))
    {
        Some(end) => format!(
            "{}\n<title>{}</title>{}\n",
            &svg[..end],
            escape(title),
            svg[end..].trim_end()
        ),
        None => svg,
    }
}

/// A chart that says there is nothing to draw yet.
pub fn empty(title: &str, why: &str) -> String {
    // Written by hand: it must come out even when drawing fails.
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"120\" \
         viewBox=\"0 0 {WIDTH} 120\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <title>{0}</title>\n<rect width=\"{WIDTH}\" height=\"120\" fill=\"white\"/>\n\
         <text x=\"{1}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" \
         font-weight=\"bold\">{0}</text>\n<text x=\"{1}\" y=\"70\" \
         text-anchor=\"middle\" fill=\"#555\">{2}</text>\n</svg>\n",
        escape(title),
        WIDTH / 2,
        escape(why)
    )
}

/// The marker of the `i`th line of a panel: a different shape for each of
/// the first eight, then again hollow or filled.
fn marker<'a, DB: DrawingBackend + 'a, C: Clone + 'a>(
    i: usize,
    at: C,
    colour: RGBColor,
) -> DynElement<'a, DB, C> {
    let fill = colour.filled();
    let line = colour.stroke_width(2);
    let dot = EmptyElement::at(at);
    match i % 8 {
        0 => (dot + Circle::new((0, 0), 4, fill)).into_dyn(),
        1 => (dot + TriangleMarker::new((0, 0), 5, fill)).into_dyn(),
        2 => (dot + Rectangle::new([(-4, -4), (4, 4)], fill)).into_dyn(),
        3 => (dot + Cross::new((0, 0), 4, line)).into_dyn(),
        4 => (dot + Circle::new((0, 0), 4, line)).into_dyn(),
        5 => (dot + Polygon::new(vec![(0, -5), (5, 0), (0, 5), (-5, 0)], fill)).into_dyn(),
        6 => (dot + Rectangle::new([(-4, -4), (4, 4)], line)).into_dyn(),
        _ => (dot + TriangleMarker::new((0, 0), 5, line)).into_dyn(),
    }
}

/// A line per series over the categories `xs`, on a linear axis from zero.
/// Categories that are all numbers, the largest four times the smallest or
/// more, go on a logarithmic axis, which its label says. (No chart of this run has a
/// single panel on a linear axis; scenarios that add one draw it here.)
#[allow(dead_code)]
pub fn lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[String],
    series: &[Series],
    format: fn(f64) -> String,
) -> String {
    let panel = Panel { title: "", series };
    panels(title, x_label, y_label, xs, &[panel], format, false)
}

/// The same on a logarithmic value axis, a tick at every power of ten, for
/// values that span several of them.
pub fn lines_log(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[String],
    series: &[Series],
    format: fn(f64) -> String,
) -> String {
    let panel = Panel { title: "", series };
    panels(title, x_label, y_label, xs, &[panel], format, true)
}

/// Small multiples: a line chart per panel, two abreast, all on the same
/// axes so that the panels compare, each with its legend beneath it.
pub fn panels(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[String],
    panels: &[Panel],
    format: fn(f64) -> String,
    log: bool,
) -> String {
    let panels: Vec<&Panel> = panels.iter().filter(|p| !p.series.is_empty()).collect();
    if panels.is_empty() {
        return empty(title, "Nothing to draw");
    }
    // Where each category goes along x.
    let numbers: Option<Vec<f64>> = xs
        .iter()
        .map(|x| x.replace(',', "").parse::<f64>().ok().filter(|v| *v > 0.0))
        .collect();
    let spread = numbers.as_ref().is_some_and(|n| {
        let (lo, hi) = n
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(l, h), v| (l.min(*v), h.max(*v)));
        n.len() > 1 && hi / lo >= 4.0
    });
    let x_log = spread;
    let positions: Vec<f64> = match (&numbers, x_log) {
        (Some(n), true) => n.iter().map(|v| v.log10()).collect(),
        _ => (0..xs.len()).map(|i| i as f64).collect(),
    };
    let (x_low, x_high) = match (positions.first(), positions.last()) {
        (Some(a), Some(b)) if b > a => (*a, *b),
        _ => (-1.0, 1.0),
    };
    let pad = (x_high - x_low) * 0.05;
    let x_desc = if x_log {
        format!("{x_label} (logarithmic scale)")
    } else {
        x_label.to_string()
    };
    let y = Axis::new(
        panels
            .iter()
            .flat_map(|p| p.series.iter())
            .flat_map(|s| s.values.iter().flatten().copied()),
        log,
    );
    let columns = if panels.len() > 1 { 2 } else { 1 };
    let rows = panels.len().div_ceil(columns);
    let panel_width = WIDTH / columns as u32;
    let per_row = (panel_width / 180).max(1) as usize;
    let legend_rows = panels
        .iter()
        .map(|p| p.series.len().div_ceil(per_row))
        .max()
        .unwrap_or(1) as u32;
    let plot_height = if panels.len() > 1 { 250 } else { 330 };
    let panel_height = plot_height + 8 + 16 * legend_rows;
    let height = 40 + panel_height * rows as u32;
    svg(title, height, |body| {
        let areas = body.split_evenly((rows, columns));
        for (panel, area) in panels.iter().zip(&areas) {
            let (plot, legend) = area.split_vertically(plot_height);
            let mut builder = ChartBuilder::on(&plot);
            builder
                .margin(10)
                .margin_right(14)
                .x_label_area_size(36)
                .y_label_area_size(if columns > 1 { 62 } else { 78 });
            if !panel.title.is_empty() {
                builder.caption(
                    panel.title,
                    (FONT, CAPTION).into_font().style(FontStyle::Bold),
                );
            }
            let mut chart = builder.build_cartesian_2d(
                Ticks {
                    range: (x_low - pad)..(x_high + pad),
                    keys: positions.clone(),
                },
                Ticks {
                    range: y.low..y.high,
                    keys: y.ticks.clone(),
                },
            )?;
            let x_name = |p: &f64| {
                positions
                    .iter()
                    .position(|q| (q - p).abs() < 1e-9)
                    .map_or(String::new(), |i| xs[i].clone())
            };
            let y_name = |p: &f64| tidy(format(y.value(*p)));
            chart
                .configure_mesh()
                .light_line_style(TRANSPARENT)
                .bold_line_style(GRID)
                .axis_desc_style((FONT, LABEL))
                .label_style((FONT, LABEL))
                .x_desc(x_desc.as_str())
                .y_desc(y.describe(y_label))
                .x_label_formatter(&x_name)
                .y_label_formatter(&y_name)
                .draw()?;
            for (n, s) in panel.series.iter().enumerate() {
                let points: Vec<Option<(f64, f64)>> = s
                    .values
                    .iter()
                    .zip(&positions)
                    .map(|(v, x)| v.filter(|v| v.is_finite()).map(|v| (*x, y.place(v))))
                    .collect();
                // The line, broken where a value is missing.
                for run in points.split(Option::is_none) {
                    let run: Vec<(f64, f64)> = run.iter().flatten().copied().collect();
                    chart.draw_series(LineSeries::new(run, colour(n).stroke_width(2)))?;
                }
                for p in points.iter().flatten() {
                    chart.plotting_area().draw(&marker(n, *p, colour(n)))?;
                }
            }
            legend_of(&legend, panel.series)?;
        }
        Ok(())
    })
}

/// A legend in its own strip: a short line with the marker, and the name.
fn legend_of(area: &DrawingArea<SVGBackend, Shift>, series: &[Series]) -> Drawn {
    let (width, _) = area.dim_in_pixel();
    let per_row = (width / 180).max(1) as usize;
    let column = width as i32 / per_row as i32;
    let style = TextStyle::from((FONT, LABEL).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (n, s) in series.iter().enumerate() {
        let (x, y) = (
            12 + (n % per_row) as i32 * column,
            8 + (n / per_row) as i32 * 16,
        );
        area.draw(&PathElement::new(
            vec![(x, y), (x + 22, y)],
            colour(n).stroke_width(2),
        ))?;
        area.draw(&marker(n, (x + 11, y), colour(n)))?;
        area.draw(&Text::new(s.name.clone(), (x + 30, y), style.clone()))?;
    }
    Ok(())
}

/// One horizontal bar: the parts laid end to end in their colours, the
/// text written past its end, and a mark.
struct Bar {
    parts: Vec<Option<f64>>,
    text: Option<String>,
    mark: Option<f64>,
}

/// Horizontal bars: a group per label (its bars one under the other), on
/// `axis`, with a legend of `names` above and `marked` naming the marks.
fn bar_chart(
    title: &str,
    value_label: &str,
    names: &[&str],
    marked: Option<&str>,
    groups: &[(String, Vec<Bar>)],
    axis: Axis,
    format: fn(f64) -> String,
) -> String {
    let bar = 14.0;
    let gap = 10.0;
    let slots: usize = groups.iter().map(|(_, bars)| bars.len()).sum();
    let legend_lines = names.len() + usize::from(marked.is_some());
    let legend_height = 8 + 18 * legend_lines as u32;
    let plot_height = (bar * slots as f64 + gap * groups.len() as f64) as u32 + 50;
    let height = 40 + legend_height + plot_height;
    // Rows from the top: the y axis runs from 0 at the top down.
    let total = bar * slots as f64 + gap * groups.len() as f64;
    svg(title, height, |body| {
        let (legend, plot) = body.split_vertically(legend_height);
        let style =
            TextStyle::from((FONT, LABEL).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        for (n, name) in names.iter().enumerate() {
            let y = 10 + 18 * n as i32;
            legend.draw(&Rectangle::new(
                [(200, y - 5), (224, y + 5)],
                colour(n).filled(),
            ))?;
            legend.draw(&Text::new(name.to_string(), (232, y), style.clone()))?;
        }
        if let Some(marked) = marked {
            let y = 10 + 18 * names.len() as i32;
            legend.draw(&PathElement::new(
                vec![(212, y - 6), (212, y + 6)],
                BLACK.stroke_width(2),
            ))?;
            legend.draw(&Text::new(marked.to_string(), (232, y), style.clone()))?;
        }
        // Where each group's label goes: the middle of its bars.
        let mut centres = Vec::new();
        let mut at = 0.0;
        for (label, bars) in groups {
            let h = bar * bars.len() as f64 + gap;
            centres.push((-(at + h / 2.0), label.clone()));
            at += h;
        }
        let keys: Vec<f64> = centres.iter().map(|(c, _)| *c).collect();
        let x_high = axis.place(axis.value(axis.high));
        let x_low = axis.place(axis.value(axis.low));
        let room = (x_high - x_low) * 0.12;
        let mut chart = ChartBuilder::on(&plot)
            .margin(6)
            .margin_right(14)
            .x_label_area_size(36)
            .y_label_area_size(190)
            .build_cartesian_2d(
                Ticks {
                    range: x_low..x_high + room,
                    keys: axis.ticks.clone(),
                },
                Ticks {
                    range: -total..0.0,
                    keys,
                },
            )?;
        let x_name = |p: &f64| {
            if *p > x_high + 1e-9 {
                String::new()
            } else {
                tidy(format(axis.value(*p)))
            }
        };
        let y_name = |p: &f64| {
            centres
                .iter()
                .find(|(c, _)| (c - p).abs() < 1e-9)
                .map_or(String::new(), |(_, l)| l.clone())
        };
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .disable_y_mesh()
            .axis_desc_style((FONT, LABEL))
            .label_style((FONT, LABEL))
            .x_desc(axis.describe(value_label))
            .x_label_formatter(&x_name)
            .y_label_formatter(&y_name)
            .draw()?;
        let mut top = 0.0;
        for (_, bars) in groups {
            top += gap / 2.0;
            for b in bars {
                let (y0, y1) = (-(top + 1.0), -(top + bar - 1.0));
                let mut start = axis.value(x_low);
                let mut drawn = false;
                for (n, part) in b.parts.iter().enumerate() {
                    let Some(v) = part.filter(|v| v.is_finite() && *v > 0.0) else {
                        continue;
                    };
                    let end = if axis.log { v } else { start + v };
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(axis.place(start), y0), (axis.place(end).max(x_low), y1)],
                        colour(n).filled(),
                    )))?;
                    start = end;
                    drawn = true;
                }
                let mid = (y0 + y1) / 2.0;
                if let Some(m) = b.mark.filter(|m| m.is_finite()) {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(axis.place(m), y0 + 1.0), (axis.place(m), y1 - 1.0)],
                        BLACK.stroke_width(2),
                    )))?;
                }
                let (text, at, colour) = match (&b.text, drawn) {
                    (Some(text), true) => {
                        let end = b
                            .mark
                            .filter(|m| m.is_finite() && *m > start)
                            .unwrap_or(start);
                        (text.clone(), axis.place(end), BLACK)
                    }
                    _ => ("no figure".to_string(), x_low, GREY),
                };
                chart.draw_series(std::iter::once(
                    EmptyElement::at((at, mid))
                        + Text::new(text, (5, 0), style.clone().color(&colour)),
                ))?;
                top += bar;
            }
            top += gap / 2.0;
        }
        Ok(())
    })
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
    let axis = Axis::new(
        series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied())
            .filter(|v| *v > 0.0),
        log,
    );
    let groups: Vec<(String, Vec<Bar>)> = categories
        .iter()
        .enumerate()
        .map(|(c, category)| {
            let bars = series
                .iter()
                .map(|s| {
                    let v = s.values.get(c).copied().flatten();
                    Bar {
                        parts: vec![v],
                        text: v.map(format),
                        mark: None,
                    }
                })
                .collect();
            (category.clone(), bars)
        })
        .collect();
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    // A bar per series, each in its own colour.
    let groups = groups
        .into_iter()
        .map(|(label, bars)| {
            let bars = bars
                .into_iter()
                .enumerate()
                .map(|(n, b)| Bar {
                    parts: std::iter::repeat_n(None, n).chain(b.parts).collect(),
                    ..b
                })
                .collect();
            (label, bars)
        })
        .collect::<Vec<_>>();
    bar_chart(title, value_label, &names, None, &groups, axis, format)
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
    let axis = Axis::new(
        rows.iter().map(|r| {
            let total: f64 = r.parts.iter().flatten().sum();
            total.max(r.mark.unwrap_or(0.0))
        }),
        false,
    );
    let groups: Vec<(String, Vec<Bar>)> = rows
        .iter()
        .map(|r| {
            let total: f64 = r.parts.iter().flatten().filter(|v| v.is_finite()).sum();
            let bar = Bar {
                parts: r.parts.clone(),
                text: (total > 0.0).then(|| format(total)),
                mark: r.mark,
            };
            (r.label.clone(), vec![bar])
        })
        .collect();
    bar_chart(
        title,
        value_label,
        part_names,
        Some(mark_name),
        &groups,
        axis,
        format,
    )
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

    /// Whether the chart writes `text` (plotters puts it on a line of its own).
    fn has(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    fn two() -> Vec<Series> {
        vec![
            Series {
                name: "a".into(),
                values: vec![Some(1.0), Some(20.0), None, Some(300.0)],
            },
            Series {
                name: "b & c".into(),
                values: vec![Some(2.0), Some(10.0), Some(30.0), Some(40.0)],
            },
        ]
    }

    #[test]
    fn numbers_that_span_powers_of_ten_go_on_a_logarithmic_axis() {
        let xs: Vec<String> = ["1", "8", "64", "1024"].map(String::from).to_vec();
        let svg = lines("T", "clients", "rate", &xs, &two(), |v| format!("{v}"));
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<title>T</title>"));
        assert!(svg.contains("clients (logarithmic scale)"));
        assert!(svg.contains("b &amp; c"));
        for x in ["1", "8", "64", "1024"] {
            assert!(has(&svg, x), "no tick {x}");
        }
        let words: Vec<String> = ["p50", "p99"].map(String::from).to_vec();
        let svg = lines("T", "percentile", "rate", &words, &two()[..1], |v| {
            format!("{v}")
        });
        assert!(!svg.contains("logarithmic"));
    }

    #[test]
    fn small_multiples_draw_every_panel() {
        let xs: Vec<String> = ["1", "8", "64", "1024"].map(String::from).to_vec();
        let (one, other) = (two(), two());
        let svg = panels(
            "T",
            "clients",
            "rate",
            &xs,
            &[
                Panel {
                    title: "blocking",
                    series: &one,
                },
                Panel {
                    title: "readiness",
                    series: &other,
                },
            ],
            |v| format!("{v}"),
            false,
        );
        assert!(has(&svg, "blocking") && has(&svg, "readiness"));
        assert_eq!(svg.matches("<svg").count(), 1);
    }

    #[test]
    fn bars_say_where_there_is_no_figure() {
        let cats: Vec<String> = ["x", "y", "z", "w"].map(String::from).to_vec();
        let svg = bars("T", "µs", &cats, &two(), true, |v| format!("{v} µs"));
        assert!(svg.contains("no figure") && svg.contains("logarithmic"));
        let rows = [Stack {
            label: "r".into(),
            parts: vec![Some(1.0), Some(2.0)],
            mark: Some(4.0),
        }];
        let svg = stacked("T", "µs", &["p", "q"], "mark", &rows, |v| {
            format!("{v} µs")
        });
        assert!(has(&svg, "3 µs") && has(&svg, "mark"));
    }
}
