//! Grouped, stacked bar charts drawn with plotters, each written as SVG and PNG from the same
//! drawing code. A [`Figure`] describes what to draw; `figures.rs` builds them from the data.

use crate::font::{self, FAMILY};
use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::{Path, PathBuf};

/// A chart: panels of grouped bars, each bar a stack of series segments.
pub struct Figure {
    /// File name without extension.
    pub stem: String,
    pub title: String,
    pub y_desc: String,
    /// Segment colours, in legend order; `Bar::segments` index into this.
    pub series: Vec<String>,
    /// Bar shades: the first solid, the second light (e.g. fresh, cached). Empty: one shade.
    pub shades: Vec<String>,
    /// Lines under the legend: what bars and error bars show.
    pub notes: Vec<String>,
    /// Legend text for `Bar::marker`, when any bar has one.
    pub marker_label: Option<String>,
    pub panels: Vec<Panel>,
    /// Drawn instead of axes when there is nothing to plot, e.g. "no data for docker: …".
    pub no_data: Option<String>,
}

pub struct Panel {
    pub title: String,
    pub groups: Vec<Group>,
}

/// Bars side by side, labelled together; consecutive groups with the same `section` (e.g. a
/// platform) get one label under them, one line per `\n`.
pub struct Group {
    /// One line per `\n`.
    pub label: String,
    pub section: String,
    pub bars: Vec<Bar>,
}

#[derive(Default)]
pub struct Bar {
    pub shade: usize,
    /// (series index, value), stacked bottom-up.
    pub segments: Vec<(usize, f64)>,
    /// Error bar (low, high) on the stack's total.
    pub whisker: Option<(f64, f64)>,
    /// A reference value drawn as a black line across the bar (e.g. the study's figure).
    pub marker: Option<f64>,
    /// Text written up from the base instead of or beside a value (e.g. "unsupported: …").
    pub note: Option<String>,
    /// Written down from the axis under this bar, when bars of one group differ in what they
    /// show (e.g. the runtime of each bar of a phase chart).
    pub label: Option<String>,
}

impl Bar {
    fn top(&self) -> f64 {
        let stack: f64 = self.segments.iter().map(|(_, v)| v.max(0.0)).sum();
        [
            stack,
            self.whisker.map_or(0.0, |w| w.1),
            self.marker.unwrap_or(0.0),
        ]
        .into_iter()
        .fold(0.0, f64::max)
    }
}

/// Tableau 10 plus ten, distinguishable in print: enough for every phase of every runtime
/// (19) to have a colour of its own in one legend.
const PALETTE: [RGBColor; 20] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(57, 59, 121),
    RGBColor(99, 121, 57),
    RGBColor(140, 109, 49),
    RGBColor(132, 60, 57),
    RGBColor(123, 65, 115),
    RGBColor(107, 110, 207),
    RGBColor(158, 218, 229),
    RGBColor(181, 207, 107),
    RGBColor(231, 186, 82),
    RGBColor(255, 187, 120),
];

fn color(series: usize, shade: usize) -> RGBColor {
    let RGBColor(r, g, b) = PALETTE[series % PALETTE.len()];
    // Each further shade is mixed halfway again toward white.
    let k = 1.0 - 0.5f64.powi(shade as i32);
    let mix = |c: u8| (c as f64 + (255.0 - c as f64) * k).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

const PANEL_HEIGHT: u32 = 360;
const LABEL_LINE: i32 = 14;
const SECTION_LINE: i32 = 17;
const SLOT_PX: f64 = 22.0;
const MAX_SLOT_PX: f64 = 48.0;
/// Text size of bar labels, and a width per character no label exceeds on average (DejaVu
/// Sans at 13 px averages about 6.5), so the room under the axis is known before drawing.
const BAR_LABEL_FONT: u32 = 13;
const BAR_LABEL_CHAR_PX: f64 = 7.5;

/// Room for the section labels' lines beyond the first.
fn extra_section_px(panel: &Panel) -> u32 {
    let lines = panel
        .groups
        .iter()
        .map(|g| g.section.split('\n').count())
        .max()
        .unwrap_or(0);
    lines.saturating_sub(1) as u32 * SECTION_LINE as u32
}

/// Room under the axis for the longest bar label, written downwards; 0 without bar labels.
fn bar_label_px(panel: &Panel) -> u32 {
    panel
        .groups
        .iter()
        .flat_map(|g| &g.bars)
        .filter_map(|b| b.label.as_ref())
        .map(|l| (l.chars().count() as f64 * BAR_LABEL_CHAR_PX).ceil() as u32 + 8)
        .max()
        .unwrap_or(0)
}

/// Bar centres along the x axis, one slot per bar, a gap between groups and a wider one
/// between sections.
struct Placement {
    bars: Vec<Vec<f64>>,
    total: f64,
}

fn place(panel: &Panel) -> Placement {
    let mut x = 0.5;
    let mut bars = Vec::new();
    for (i, g) in panel.groups.iter().enumerate() {
        if i > 0 {
            x += if g.section == panel.groups[i - 1].section {
                0.8
            } else {
                1.6
            };
        }
        bars.push(
            (0..g.bars.len())
                .map(|j| x + j as f64 + 0.5)
                .collect::<Vec<_>>(),
        );
        x += g.bars.len() as f64;
    }
    Placement {
        bars,
        total: (x + 0.5).max(2.0),
    }
}

impl Figure {
    /// Title, legend rows (at least two), notes.
    fn header_height(&self, width: u32) -> u32 {
        40 + self.legend_rows(width).max(2) * 22 + 18 * self.notes.len() as u32 + 6
    }

    /// Legend entries: series, shades, the marker (`None`: drawn as a line).
    fn legend_items(&self) -> Vec<(String, Option<RGBColor>)> {
        let mut items: Vec<(String, Option<RGBColor>)> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), Some(color(i, 0))))
            .collect();
        if self.shades.len() > 1 {
            for (i, s) in self.shades.iter().enumerate() {
                let RGBColor(g, _, _) = color(7, i);
                items.push((format!("{s} (shade)"), Some(RGBColor(g, g, g))));
            }
        }
        if let Some(m) = &self.marker_label {
            items.push((m.clone(), None));
        }
        items
    }

    /// Rows the legend wraps into, from a width per character no glyph of the legend's
    /// font exceeds on average, so the header is never too short for it.
    fn legend_rows(&self, width: u32) -> u32 {
        let (mut x, mut rows) = (16, 1);
        for (text, _) in self.legend_items() {
            let w = 20 + 9 * text.chars().count() as u32 + 18;
            if x + w > width.saturating_sub(16) && x > 16 {
                x = 16;
                rows += 1;
            }
            x += w;
        }
        rows
    }

    fn size(&self) -> (u32, u32) {
        let slots = self
            .panels
            .iter()
            .map(|p| place(p).total)
            .fold(0.0, f64::max);
        let width = (120.0 + slots * SLOT_PX).clamp(900.0, 3200.0) as u32;
        let body = if self.no_data.is_some() || self.panels.is_empty() {
            200
        } else {
            self.panels
                .iter()
                .map(|p| PANEL_HEIGHT + bar_label_px(p) + extra_section_px(p))
                .sum()
        };
        (width, self.header_height(width) + body)
    }

    /// Writes `<dir>/<stem>.svg` and `<dir>/<stem>.png`.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        font::ensure()?;
        let (w, h) = self.size();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
            self.draw(&root)?;
            root.present()?;
        }
        let mut rgb = vec![255u8; w as usize * h as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(&root)?;
            root.present()?;
        }
        let svg_path = dir.join(format!("{}.svg", self.stem));
        std::fs::write(&svg_path, svg)
            .with_context(|| format!("cannot write {}", svg_path.display()))?;
        let png_path = dir.join(format!("{}.png", self.stem));
        std::fs::write(&png_path, encode_png(&rgb, w, h)?)
            .with_context(|| format!("cannot write {}", png_path.display()))?;
        Ok(vec![svg_path, png_path])
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (width, _) = root.dim_in_pixel();
        let (header, body) = root.split_vertically(self.header_height(width));
        header.draw_text(
            &self.title,
            &TextStyle::from((FAMILY, 24).into_font()).pos(Pos::new(HPos::Center, VPos::Top)),
            (width as i32 / 2, 8),
        )?;
        let mut y = self.draw_legend(&header, width as i32)?;
        for line in &self.notes {
            header.draw_text(
                line,
                &(FAMILY, 14).into_font().color(&BLACK.mix(0.8)),
                (16, y),
            )?;
            y += 18;
        }
        if let Some(msg) = &self.no_data {
            let (bw, bh) = body.dim_in_pixel();
            body.draw_text(
                msg,
                &TextStyle::from((FAMILY, 20).into_font())
                    .color(&RGBColor(160, 0, 0))
                    .pos(Pos::new(HPos::Center, VPos::Center)),
                (bw as i32 / 2, bh as i32 / 2),
            )?;
            return Ok(());
        }
        // Panels are as tall as their bar labels need: split at each panel's own height.
        let mut rest = body;
        for panel in &self.panels {
            let (area, below) =
                rest.split_vertically(PANEL_HEIGHT + bar_label_px(panel) + extra_section_px(panel));
            self.draw_panel(&area, panel)?;
            rest = below;
        }
        Ok(())
    }

    /// Swatches for series, shades and the marker; returns the y below the legend.
    fn draw_legend<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        width: i32,
    ) -> Result<i32>
    where
        DB::ErrorType: 'static,
    {
        let style =
            TextStyle::from((FAMILY, 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        let (mut x, mut y) = (16, 40);
        for (text, fill) in self.legend_items() {
            let (tw, _) = area.estimate_text_size(&text, &style)?;
            if x + 24 + tw as i32 > width - 16 {
                x = 16;
                y += 22;
            }
            match fill {
                Some(c) => area.draw(&Rectangle::new([(x, y - 7), (x + 14, y + 7)], c.filled()))?,
                None => area.draw(&PathElement::new(
                    vec![(x, y), (x + 14, y)],
                    BLACK.stroke_width(3),
                ))?,
            }
            area.draw_text(&text, &style, (x + 20, y))?;
            x += 20 + tw as i32 + 18;
        }
        Ok(y + 22)
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        panel: &Panel,
    ) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let mut placement = place(panel);
        // Few bars would otherwise stretch across the whole width: keep bars at most
        // MAX_SLOT_PX wide and centre them.
        let (w, _) = area.dim_in_pixel();
        let min_slots = (w as f64 - 110.0) / MAX_SLOT_PX;
        if placement.total < min_slots {
            let shift = (min_slots - placement.total) / 2.0;
            placement
                .bars
                .iter_mut()
                .flatten()
                .for_each(|x| *x += shift);
            placement.total = min_slots;
        }
        let top = panel
            .groups
            .iter()
            .flat_map(|g| g.bars.iter())
            .map(Bar::top)
            .fold(0.0, f64::max);
        let y_max = if top > 0.0 { top * 1.12 } else { 1.0 };
        let label_lines = panel
            .groups
            .iter()
            .map(|g| g.label.lines().count())
            .max()
            .unwrap_or(0) as i32;
        let bar_labels = bar_label_px(panel) as i32;
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, (FAMILY, 19))
            .margin(8)
            .margin_right(20)
            .x_label_area_size(
                label_lines * LABEL_LINE + 30 + bar_labels + extra_section_px(panel) as i32,
            )
            .y_label_area_size(76)
            .build_cartesian_2d(0f64..placement.total, 0f64..y_max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .light_line_style(TRANSPARENT)
            .y_desc(self.y_desc.as_str())
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .draw()?;
        if panel.groups.is_empty() {
            chart.draw_series(std::iter::once(Text::new(
                "no data",
                (placement.total / 2.0, y_max / 2.0),
                TextStyle::from((FAMILY, 16).into_font()).pos(Pos::new(HPos::Center, VPos::Center)),
            )))?;
            return Ok(());
        }

        // Pixel position of a data point relative to this panel, for text outside the plot.
        let plot = chart.plotting_area();
        let base = area.get_base_pixel();
        let px = |x: f64, y: f64| {
            let (ax, ay) = plot.map_coordinate(&(x, y));
            (ax - base.0, ay - base.1)
        };
        let note_style = TextStyle::from((FAMILY, 14).into_font())
            .transform(FontTransform::Rotate270)
            .color(&RGBColor(120, 0, 0));
        // Read bottom to top, ending just under the axis, like the notes above it.
        let bar_label_font = TextStyle::from((FAMILY, BAR_LABEL_FONT).into_font());
        let bar_label_style = bar_label_font.transform(FontTransform::Rotate270);

        for (g, xs) in panel.groups.iter().zip(&placement.bars) {
            for (bar, &cx) in g.bars.iter().zip(xs) {
                let (l, r) = (cx - 0.4, cx + 0.4);
                let mut y = 0.0;
                for &(s, v) in &bar.segments {
                    if v > 0.0 {
                        plot.draw(&Rectangle::new(
                            [(l, y), (r, y + v)],
                            color(s, bar.shade).filled(),
                        ))?;
                        y += v;
                    }
                }
                if let Some((lo, hi)) = bar.whisker {
                    let w = BLACK.stroke_width(1);
                    for line in [
                        vec![(cx, lo), (cx, hi)],
                        vec![(cx - 0.2, lo), (cx + 0.2, lo)],
                        vec![(cx - 0.2, hi), (cx + 0.2, hi)],
                    ] {
                        plot.draw(&PathElement::new(line, w))?;
                    }
                }
                if let Some(m) = bar.marker {
                    plot.draw(&PathElement::new(
                        vec![(l - 0.1, m), (r + 0.1, m)],
                        BLACK.stroke_width(3),
                    ))?;
                }
                if let Some(note) = &bar.note {
                    let (x, y) = px(cx, 0.0);
                    area.draw_text(note, &note_style, (x - 6, y - 6))?;
                }
                if let Some(label) = &bar.label {
                    let (x, y) = px(cx, 0.0);
                    let (length, _) = area.estimate_text_size(label, &bar_label_font)?;
                    area.draw_text(label, &bar_label_style, (x - 6, y + 6 + length as i32))?;
                }
            }
        }

        // Group labels under the axis, then one section label per run of equal sections.
        let label_style =
            TextStyle::from((FAMILY, 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        let section_style =
            TextStyle::from((FAMILY, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        let mut start = 0;
        for (i, (g, xs)) in panel.groups.iter().zip(&placement.bars).enumerate() {
            let centre = xs.iter().sum::<f64>() / xs.len().max(1) as f64;
            let (x, y) = px(centre, 0.0);
            let y = y + bar_labels;
            for (k, line) in g.label.lines().enumerate() {
                area.draw_text(line, &label_style, (x, y + 4 + k as i32 * LABEL_LINE))?;
            }
            let last_of_section = panel
                .groups
                .get(i + 1)
                .is_none_or(|next| next.section != g.section);
            if last_of_section {
                let first = placement.bars[start].first().copied().unwrap_or(centre);
                let last = xs.last().copied().unwrap_or(centre);
                let (sx, sy) = px((first + last) / 2.0, 0.0);
                for (k, line) in g.section.split('\n').enumerate() {
                    area.draw_text(
                        line,
                        &section_style,
                        (
                            sx,
                            sy + bar_labels
                                + 8
                                + label_lines * LABEL_LINE
                                + k as i32 * SECTION_LINE,
                        ),
                    )?;
                }
                if i + 1 < panel.groups.len() {
                    let sep = (last + placement.bars[i + 1][0]) / 2.0;
                    plot.draw(&PathElement::new(
                        vec![(sep, 0.0), (sep, y_max)],
                        BLACK.mix(0.25).stroke_width(1),
                    ))?;
                }
                start = i + 1;
            }
        }
        Ok(())
    }
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().context("cannot encode PNG")?;
    writer.write_image_data(rgb).context("cannot encode PNG")?;
    writer.finish().context("cannot encode PNG")?;
    Ok(out)
}
