//! Line charts as SVG files beside docs/SOAK.md, so that a slope over time (latency that
//! climbs, memory that creeps) shows at a glance where the tables need reading. Written by
//! hand rather than with a plotting crate: lines, ticks and labels are all a soak needs, and
//! the bench's build stays as it is.

use std::fmt::Write as _;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 380.0;
/// Room for the y ticks' labels at the left; above the plot the title, the legend under it and
/// a band for the event names (slanted, so that events a minute apart do not overlap); the x
/// ticks below; at the right, for the last event's name.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 60.0;
const TOP: f64 = 110.0;
const BOTTOM: f64 = 44.0;
const LEGEND: f64 = 36.0;

pub struct Series {
    pub name: String,
    pub colour: &'static str,
    pub dashed: bool,
    pub points: Vec<(f64, f64)>,
}

pub struct Chart {
    pub title: String,
    pub x_label: &'static str,
    pub y_label: &'static str,
    /// A log scale for values that span orders of magnitude (latency through a broker restart).
    pub log_y: bool,
    pub series: Vec<Series>,
    /// Vertical marks at x with a short name: the chaos events.
    pub marks: Vec<(f64, String)>,
}

impl Chart {
    pub fn svg(&self) -> String {
        let all = || self.series.iter().flat_map(|s| &s.points);
        let x_max = all()
            .map(|p| p.0)
            .chain(self.marks.iter().map(|m| m.0))
            .fold(1.0_f64, f64::max);
        let y_values = || {
            all()
                .map(|p| p.1)
                .filter(|y| y.is_finite() && (!self.log_y || *y > 0.0))
        };
        let (y_low, y_high) = if self.log_y {
            let low = y_values().fold(f64::INFINITY, f64::min);
            let high = y_values().fold(0.0_f64, f64::max);
            let low = if low.is_finite() { low } else { 1.0 };
            (
                10f64.powf(low.log10().floor()),
                10f64.powf(high.max(low * 10.0).log10().ceil()),
            )
        } else {
            // From zero, so that +10 % looks like +10 %.
            (0.0, nice_ceiling(y_values().fold(1.0_f64, f64::max) * 1.1))
        };
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let x_at = |x: f64| LEFT + plot_w * x / x_max;
        let y_at = |y: f64| {
            let share = if self.log_y {
                (y.max(y_low).log10() - y_low.log10()) / (y_high.log10() - y_low.log10())
            } else {
                y / y_high
            };
            TOP + plot_h * (1.0 - share)
        };

        let mut svg = String::new();
        let _ = writeln!(
            svg,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="11">"#
        );
        let _ = writeln!(
            svg,
            r#"<title>{}</title><rect width="100%" height="100%" fill="white"/>"#,
            escape(&self.title)
        );
        let _ = writeln!(
            svg,
            r#"<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{}</text>"#,
            escape(&self.title)
        );

        for (value, label) in y_ticks(y_low, y_high, self.log_y) {
            let y = y_at(value);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"##,
                WIDTH - RIGHT,
                LEFT - 6.0,
                y + 4.0
            );
        }
        for value in ticks(0.0, x_max) {
            let x = x_at(value);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#888"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                HEIGHT - BOTTOM,
                HEIGHT - BOTTOM + 4.0,
                HEIGHT - BOTTOM + 16.0,
                short(value)
            );
        }
        let _ = writeln!(
            svg,
            r##"<path d="M{LEFT},{TOP} V{:.1} H{:.1}" fill="none" stroke="#888"/>"##,
            HEIGHT - BOTTOM,
            WIDTH - RIGHT
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            HEIGHT - 8.0,
            self.x_label
        );
        let _ = writeln!(
            svg,
            r#"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
            TOP + plot_h / 2.0,
            self.y_label
        );

        for (at, name) in &self.marks {
            let x = x_at(*at);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#b0b0b0" stroke-dasharray="3 3"/><text transform="translate({:.1} {:.1}) rotate(-35)" font-size="10" fill="#555">{}</text>"##,
                HEIGHT - BOTTOM,
                x + 2.0,
                TOP - 3.0,
                escape(name)
            );
        }

        for s in &self.series {
            let points: Vec<String> = s
                .points
                .iter()
                .filter(|(_, y)| y.is_finite() && (!self.log_y || *y > 0.0))
                .map(|&(x, y)| format!("{:.1},{:.1}", x_at(x), y_at(y)))
                .collect();
            if points.is_empty() {
                continue;
            }
            let _ = writeln!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="1.6"{}/>"#,
                points.join(" "),
                s.colour,
                if s.dashed {
                    r#" stroke-dasharray="6 3""#
                } else {
                    ""
                }
            );
        }

        // The legend in a row under the title, where no line or mark runs.
        let mut x = LEFT;
        for s in &self.series {
            let _ = writeln!(
                svg,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="2"{}/><text x="{:.1}" y="{LEGEND}">{}</text>"#,
                LEGEND - 4.0,
                x + 18.0,
                LEGEND - 4.0,
                s.colour,
                if s.dashed {
                    r#" stroke-dasharray="6 3""#
                } else {
                    ""
                },
                x + 22.0,
                escape(&s.name)
            );
            x += 30.0 + 6.2 * s.name.chars().count() as f64;
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// The least of 1, 2 or 5 × 10ⁿ at or above `value`.
fn nice_ceiling(value: f64) -> f64 {
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= value)
        .unwrap_or(10.0 * magnitude)
}

/// About six round values from `low` to `high`.
fn ticks(low: f64, high: f64) -> Vec<f64> {
    let step = nice_ceiling((high - low) / 6.0);
    let mut values = Vec::new();
    let mut v = (low / step).ceil() * step;
    while v <= high + step * 1e-9 {
        values.push(v);
        v += step;
    }
    values
}

fn y_ticks(low: f64, high: f64, log: bool) -> Vec<(f64, String)> {
    if log {
        let mut values = Vec::new();
        let mut v = low;
        while v <= high * 1.0001 {
            values.push((v, milliseconds(v)));
            v *= 10.0;
        }
        values
    } else {
        ticks(low, high)
            .into_iter()
            .map(|v| (v, short(v)))
            .collect()
    }
}

fn short(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn milliseconds(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{} s", short(ms / 1000.0))
    } else {
        format!("{} ms", short(ms))
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
