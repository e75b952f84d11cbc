//! deepoffload's charts: the few kinds the study's figures need (lines, heatmaps, stacked and
//! grouped bars), drawn to PNG with plotters.
//!
//! Text needs a font file; plotters' pure-Rust `ab_glyph` backend renders it, so nothing depends
//! on fontconfig. The font is DejaVu Sans from Debian's `fonts-dejavu-core`, pinned by sha256
//! and fetched through the asset store like the models.

use deepoffload_assets::{Asset, DebPackage, Request, Source, Store};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::OnceLock;

/// DejaVu Sans, the chart font.
pub const FONT: Asset = Asset {
    group: "fonts-dejavu-2.37",
    file_name: "DejaVuSans.ttf",
    description: "DejaVu Sans (chart labels)",
    sha256: "abdc775b21b1bc470d50c97e790d276f2054b7504e56e5bd3e64f48d68582322",
    size: Some(759_720),
    shared_path: None,
    source: Source::Deb(DebPackage {
        name: "fonts-dejavu-core",
        version: "2.37-6",
        member: "usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    }),
    variants: &[],
};

/// Where the installed Debian package keeps the same file; used when its bytes match the pin,
/// which saves a download on machines that have the package.
const SYSTEM_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("chart font: {0}")]
    Font(String),
    #[error("drawing {path}: {message}")]
    Draw { path: String, message: String },
    #[error("chart `{0}` has no data to draw")]
    Empty(String),
}

static FONT_READY: OnceLock<Result<(), String>> = OnceLock::new();

/// Registers the chart font once per process (finding or fetching it first).
pub fn init_font(store: &Store) -> Result<(), PlotError> {
    FONT_READY
        .get_or_init(|| {
            let system = Path::new(SYSTEM_FONT);
            let path = if store.check(&FONT, system) == deepoffload_assets::CopyState::Verified {
                system.to_path_buf()
            } else {
                store
                    .resolve(Request::new(&FONT))
                    .map_err(|e| e.to_string())?
                    .path
            };
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            // plotters keeps registered fonts for the life of the process and wants 'static
            // bytes; one leaked copy per process is that lifetime.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{}: not a usable TrueType font", path.display()))?;
            plotters::style::register_font("sans-serif", FontStyle::Bold, bytes)
                .map_err(|_| format!("{}: not a usable TrueType font", path.display()))
        })
        .clone()
        .map_err(PlotError::Font)
}

/// Chart size in pixels.
pub const SIZE: (u32, u32) = (1000, 640);

/// The series palette: distinguishable, and readable in grey.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Line,
    Points,
    LinePoints,
    /// A dashed line, for fits and models beside measurements.
    Dashed,
}

/// One named series of (x, y) points.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub mark: Mark,
    /// Index into [`PALETTE`].
    pub color: usize,
}

/// A line chart; `markers` draws labelled vertical lines (e.g. a crossover).
#[derive(Debug, Clone, Default)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub markers: Vec<(f64, String)>,
    /// A line of small text under the title (conditions, data source).
    pub note: Option<String>,
    /// A logarithmic y axis (values ≤ 0 are left out), for quantities spanning decades.
    pub log_y: bool,
}

fn draw_error(path: &Path, e: impl std::fmt::Display) -> PlotError {
    PlotError::Draw {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn pad_range(lo: f64, hi: f64, from_zero: bool) -> (f64, f64) {
    let lo = if from_zero { lo.min(0.0) } else { lo };
    let span = (hi - lo).abs().max(1e-9);
    (
        if from_zero && lo >= 0.0 {
            0.0
        } else {
            lo - span * 0.05
        },
        hi + span * 0.08,
    )
}

/// Fills the canvas, writes the title and note, and returns the area below them.
fn titled<'a>(
    root: DrawingArea<BitMapBackend<'a>, Shift>,
    title: &str,
    note: Option<&str>,
    path: &Path,
) -> Result<DrawingArea<BitMapBackend<'a>, Shift>, PlotError> {
    root.fill(&WHITE).map_err(|e| draw_error(path, e))?;
    let root = root
        .titled(title, ("sans-serif", 24).into_font().style(FontStyle::Bold))
        .map_err(|e| draw_error(path, e))?;
    match note {
        Some(note) => {
            let (top, rest) = root.split_vertically(24);
            top.draw(&Text::new(
                note.to_string(),
                (12, 4),
                ("sans-serif", 14).into_font().color(&RGBColor(90, 90, 90)),
            ))
            .map_err(|e| draw_error(path, e))?;
            Ok(rest)
        }
        None => Ok(root),
    }
}

/// Draws a line chart to a PNG file.
pub fn line_chart(path: &Path, chart: &LineChart) -> Result<(), PlotError> {
    let points: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite() && (!chart.log_y || *y > 0.0))
        .collect();
    if points.is_empty() {
        return Err(PlotError::Empty(chart.title.clone()));
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64, pick: fn(&(f64, f64)) -> f64| {
        points.iter().map(pick).fold(init, f)
    };
    let mut x_hi = fold(f64::max, f64::MIN, |p| p.0);
    let mut x_lo = fold(f64::min, f64::MAX, |p| p.0);
    for (x, _) in &chart.markers {
        x_hi = x_hi.max(*x);
        x_lo = x_lo.min(*x);
    }
    let (x_lo, x_hi) = pad_range(x_lo, x_hi, false);
    let (y_min, y_max) = (
        fold(f64::min, f64::MAX, |p| p.1),
        fold(f64::max, f64::MIN, |p| p.1),
    );
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    let area = titled(root, &chart.title, chart.note.as_deref(), path)?;
    let mut builder = ChartBuilder::on(&area);
    builder
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80);
    if chart.log_y {
        let (y_lo, y_hi) = (y_min / 1.5, y_max * 1.5);
        let ctx = builder
            .build_cartesian_2d(x_lo..x_hi, (y_lo..y_hi).log_scale())
            .map_err(|e| draw_error(path, e))?;
        draw_lines(ctx, chart, (y_lo, y_hi), true, path)?;
    } else {
        let (y_lo, y_hi) = pad_range(y_min, y_max, true);
        let ctx = builder
            .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
            .map_err(|e| draw_error(path, e))?;
        draw_lines(ctx, chart, (y_lo, y_hi), false, path)?;
    }
    area.present().map_err(|e| draw_error(path, e))
}

/// The body of a line chart on either a linear or a logarithmic y axis.
fn draw_lines<'a, Y>(
    mut ctx: ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    chart: &LineChart,
    (y_lo, y_hi): (f64, f64),
    log_y: bool,
    path: &Path,
) -> Result<(), PlotError>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(|e| draw_error(path, e))?;
    for s in &chart.series {
        let color = PALETTE[s.color % PALETTE.len()];
        // Runs of drawable points: a line breaks where a value cannot be drawn (a zero on a log
        // axis, say an outage) instead of bridging it.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for &(x, y) in &s.points {
            if x.is_finite() && y.is_finite() && (!log_y || y > 0.0) {
                runs.last_mut().expect("one run at least").push((x, y));
            } else if !runs.last().expect("one run at least").is_empty() {
                runs.push(Vec::new());
            }
        }
        let style = ShapeStyle::from(&color).stroke_width(3);
        for (k, pts) in runs.iter().filter(|r| !r.is_empty()).enumerate() {
            let anno = match s.mark {
                Mark::Line | Mark::LinePoints => ctx
                    .draw_series(LineSeries::new(pts.clone(), style))
                    .map_err(|e| draw_error(path, e))?,
                Mark::Dashed => ctx
                    .draw_series(DashedLineSeries::new(pts.clone(), 10, 6, style))
                    .map_err(|e| draw_error(path, e))?,
                Mark::Points => ctx
                    .draw_series(pts.iter().map(|p| Circle::new(*p, 5, color.filled())))
                    .map_err(|e| draw_error(path, e))?,
            };
            if k == 0 {
                anno.label(s.name.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
            }
            if s.mark == Mark::LinePoints {
                ctx.draw_series(pts.iter().map(|p| Circle::new(*p, 4, color.filled())))
                    .map_err(|e| draw_error(path, e))?;
            }
        }
    }
    // At the foot of the line: the legend holds the top corner.
    let label_y = if log_y {
        y_lo * (y_hi / y_lo).powf(0.03)
    } else {
        y_lo + (y_hi - y_lo) * 0.03
    };
    for (x, label) in &chart.markers {
        let grey = RGBColor(60, 60, 60);
        ctx.draw_series(DashedLineSeries::new(
            vec![(*x, y_lo), (*x, y_hi)],
            6,
            4,
            grey.stroke_width(2),
        ))
        .map_err(|e| draw_error(path, e))?;
        ctx.draw_series(std::iter::once(Text::new(
            label.clone(),
            (*x, label_y),
            ("sans-serif", 15).into_font().color(&grey),
        )))
        .map_err(|e| draw_error(path, e))?;
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| draw_error(path, e))?;
    Ok(())
}

/// One panel of a heatmap figure: `values[row][column]`, rows bottom to top.
#[derive(Debug, Clone)]
pub struct Heatmap {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub columns: Vec<String>,
    pub rows: Vec<String>,
    pub values: Vec<Vec<Option<f64>>>,
}

/// Draws heatmap panels side by side on one colour scale, with the value in each cell and a
/// colour bar labelled `scale_label`.
pub fn heatmaps(
    path: &Path,
    title: &str,
    note: Option<&str>,
    scale_label: &str,
    panels: &[Heatmap],
) -> Result<(), PlotError> {
    let all: Vec<f64> = panels
        .iter()
        .flat_map(|p| p.values.iter().flatten().flatten().copied())
        .collect();
    if all.is_empty()
        || panels.is_empty()
        || panels
            .iter()
            .any(|p| p.columns.is_empty() || p.rows.is_empty())
    {
        return Err(PlotError::Empty(title.to_string()));
    }
    let lo = all.iter().copied().fold(f64::MAX, f64::min);
    let hi = all.iter().copied().fold(f64::MIN, f64::max).max(lo + 1e-9);
    let width = 560 * panels.len() as u32 + 140;
    let root = BitMapBackend::new(path, (width, 600)).into_drawing_area();
    let area = titled(root, title, note, path)?;
    let (maps, bar) = area.split_horizontally(width - 140);
    let cells = maps.split_evenly((1, panels.len()));
    for (panel, cell) in panels.iter().zip(cells.iter()) {
        let nx = panel.columns.len() as i32;
        let ny = panel.rows.len() as i32;
        let mut ctx = ChartBuilder::on(cell)
            .caption(&panel.title, ("sans-serif", 18))
            .margin(14)
            .x_label_area_size(50)
            .y_label_area_size(90)
            // A segmented range a..b holds b − a + 1 segments.
            .build_cartesian_2d((0..nx - 1).into_segmented(), (0..ny - 1).into_segmented())
            .map_err(|e| draw_error(path, e))?;
        let label = |labels: &[String], v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                labels.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        ctx.configure_mesh()
            .disable_mesh()
            .x_desc(&panel.x_label)
            .y_desc(&panel.y_label)
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 14))
            .x_labels(nx as usize)
            .y_labels(ny as usize)
            .x_label_formatter(&|v| label(&panel.columns, v))
            .y_label_formatter(&|v| label(&panel.rows, v))
            .draw()
            .map_err(|e| draw_error(path, e))?;
        for (j, row) in panel.values.iter().enumerate() {
            for (i, value) in row.iter().enumerate() {
                let (i, j) = (i as i32, j as i32);
                let corners = [
                    (SegmentValue::Exact(i), SegmentValue::Exact(j)),
                    (SegmentValue::Exact(i + 1), SegmentValue::Exact(j + 1)),
                ];
                let (fill, text) = match value {
                    Some(v) => {
                        let t = ((v - lo) / (hi - lo)) as f32;
                        (ViridisRGB::get_color(t), format!("{v:.2}"))
                    }
                    None => (RGBColor(220, 220, 220), "n/a".to_string()),
                };
                ctx.draw_series(std::iter::once(Rectangle::new(corners, fill.filled())))
                    .map_err(|e| draw_error(path, e))?;
                let ink = if value.is_some_and(|v| (v - lo) / (hi - lo) > 0.6) {
                    BLACK
                } else {
                    WHITE
                };
                ctx.draw_series(std::iter::once(Text::new(
                    text,
                    (SegmentValue::CenterOf(i), SegmentValue::CenterOf(j)),
                    ("sans-serif", 15)
                        .into_font()
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center)),
                )))
                .map_err(|e| draw_error(path, e))?;
            }
        }
    }
    colour_bar(&bar, lo, hi, scale_label, path)?;
    maps.present().map_err(|e| draw_error(path, e))
}

fn colour_bar(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    lo: f64,
    hi: f64,
    label: &str,
    path: &Path,
) -> Result<(), PlotError> {
    let mut ctx = ChartBuilder::on(area)
        .margin_top(40)
        .margin_bottom(60)
        .margin_right(10)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..1.0, lo..hi)
        .map_err(|e| draw_error(path, e))?;
    ctx.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_desc(label)
        .axis_desc_style(("sans-serif", 15))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| draw_error(path, e))?;
    let steps = 100;
    ctx.draw_series((0..steps).map(|k| {
        let a = lo + (hi - lo) * k as f64 / steps as f64;
        let b = lo + (hi - lo) * (k + 1) as f64 / steps as f64;
        Rectangle::new(
            [(0.0, a), (1.0, b)],
            ViridisRGB::get_color(k as f32 / steps as f32).filled(),
        )
    }))
    .map_err(|e| draw_error(path, e))?;
    Ok(())
}

/// Bars: one bar per label, each a stack of `parts` (stacked) or a group of them (grouped).
#[derive(Debug, Clone, Default)]
pub struct BarChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Names of the parts (stack layers, or bars within a group), for the legend.
    pub parts: Vec<String>,
    /// (bar label, value of each part).
    pub bars: Vec<(String, Vec<f64>)>,
    pub stacked: bool,
    pub note: Option<String>,
}

/// Draws a stacked or grouped bar chart to a PNG file.
pub fn bar_chart(path: &Path, chart: &BarChart) -> Result<(), PlotError> {
    if chart.bars.is_empty() || chart.parts.is_empty() {
        return Err(PlotError::Empty(chart.title.clone()));
    }
    let top = chart
        .bars
        .iter()
        .map(|(_, v)| {
            if chart.stacked {
                v.iter().filter(|x| x.is_finite()).sum::<f64>()
            } else {
                v.iter()
                    .copied()
                    .filter(|x| x.is_finite())
                    .fold(0.0, f64::max)
            }
        })
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.25;
    let n = chart.bars.len() as i32;
    // Room for each bar's label written across.
    let widest = chart.bars.iter().map(|(l, _)| l.len()).max().unwrap_or(0) as u32;
    let width = SIZE.0.max((widest * 8 + 16) * n as u32 + 200);
    let root = BitMapBackend::new(path, (width, SIZE.1)).into_drawing_area();
    let area = titled(root, &chart.title, chart.note.as_deref(), path)?;
    let mut ctx = ChartBuilder::on(&area)
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top)
        .map_err(|e| draw_error(path, e))?;
    let labels: Vec<String> = chart.bars.iter().map(|(l, _)| l.clone()).collect();
    ctx.configure_mesh()
        .disable_x_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 13))
        .x_labels(n as usize)
        .x_label_style(("sans-serif", 13))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                labels.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .draw()
        .map_err(|e| draw_error(path, e))?;
    let parts = chart.parts.len();
    // Bars sit on whole segments; a grouped bar takes a slice of its segment, set in pixels.
    let segment_px = ctx.plotting_area().dim_in_pixel().0 as f64 / n as f64;
    for (k, part) in chart.parts.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let (left, right) = if chart.stacked {
            let side = (segment_px * 0.15) as u32;
            (side, side)
        } else {
            let slot = segment_px * 0.8 / parts as f64;
            let left = segment_px * 0.1 + slot * k as f64;
            (left as u32, (segment_px - left - slot).max(0.0) as u32)
        };
        let rects: Vec<Rectangle<(SegmentValue<i32>, f64)>> = chart
            .bars
            .iter()
            .enumerate()
            .filter_map(|(i, (_, values))| {
                let v = *values.get(k)?;
                if !v.is_finite() {
                    return None;
                }
                let i = i as i32;
                let (y0, y1) = if chart.stacked {
                    let below: f64 = values[..k].iter().filter(|x| x.is_finite()).sum();
                    (below, below + v)
                } else {
                    (0.0, v)
                };
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), y0),
                        (SegmentValue::Exact(i + 1), y1),
                    ],
                    color.filled(),
                );
                r.set_margin(0, 0, left, right);
                Some(r)
            })
            .collect();
        ctx.draw_series(rects)
            .map_err(|e| draw_error(path, e))?
            .label(part.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled()));
    }
    // The legend goes to the side away from the tallest bar.
    let tallest = chart
        .bars
        .iter()
        .map(|(_, v)| v.iter().filter(|x| x.is_finite()).sum::<f64>())
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(0, |(i, _)| i);
    ctx.configure_series_labels()
        .position(if tallest * 2 >= chart.bars.len() {
            SeriesLabelPosition::UpperLeft
        } else {
            SeriesLabelPosition::UpperRight
        })
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| draw_error(path, e))?;
    area.present().map_err(|e| draw_error(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::from_env()
    }

    #[test]
    fn every_kind_of_chart_draws_a_png_with_ink_on_it() {
        init_font(&store()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let line = dir.path().join("line.png");
        line_chart(
            &line,
            &LineChart {
                title: "t".into(),
                x_label: "x (ms)".into(),
                y_label: "y (fps)".into(),
                series: vec![Series {
                    name: "a".into(),
                    points: vec![(0.0, 1.0), (1.0, 2.0)],
                    mark: Mark::LinePoints,
                    color: 0,
                }],
                markers: vec![(0.5, "cross".into())],
                note: Some("note".into()),
                log_y: false,
            },
        )
        .unwrap();
        let log = dir.path().join("log.png");
        line_chart(
            &log,
            &LineChart {
                title: "log".into(),
                x_label: "t (s)".into(),
                y_label: "Mbit/s".into(),
                series: vec![Series {
                    name: "rate".into(),
                    // A zero cannot sit on a log axis: it is left out, not an error.
                    points: vec![(0.0, 0.06), (1.0, 20.0), (2.0, 0.0)],
                    mark: Mark::LinePoints,
                    color: 1,
                }],
                markers: vec![(1.5, "phase".into())],
                note: None,
                log_y: true,
            },
        )
        .unwrap();
        let heat = dir.path().join("heat.png");
        heatmaps(
            &heat,
            "h",
            None,
            "F1",
            &[Heatmap {
                title: "p".into(),
                x_label: "bit rate".into(),
                y_label: "resolution".into(),
                columns: vec!["a".into(), "b".into()],
                rows: vec!["r".into()],
                values: vec![vec![Some(0.1), None]],
            }],
        )
        .unwrap();
        let bars = dir.path().join("bars.png");
        for stacked in [true, false] {
            bar_chart(
                &bars,
                &BarChart {
                    title: "b".into(),
                    x_label: "config".into(),
                    y_label: "ms".into(),
                    parts: vec!["net".into(), "server".into()],
                    bars: vec![("c1".into(), vec![1.0, 2.0]), ("c2".into(), vec![3.0, 0.5])],
                    stacked,
                    note: None,
                },
            )
            .unwrap();
        }
        for png in [line, log, heat, bars] {
            let img = image::open(&png).unwrap().to_rgb8();
            let dark = img
                .pixels()
                .filter(|p| p.0.iter().all(|c| *c < 100))
                .count();
            assert!(
                dark > 500,
                "{} has text and axes ({dark} dark pixels)",
                png.display()
            );
        }
    }

    #[test]
    fn a_chart_without_data_is_an_error_not_an_empty_picture() {
        init_font(&store()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = line_chart(&dir.path().join("x.png"), &LineChart::default()).unwrap_err();
        assert!(matches!(err, PlotError::Empty(_)));
    }
}
