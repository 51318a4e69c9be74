//! The timeline of one pool as SVG, drawn with plotters' SVG backend: per
//! scrape, the builds that arrived and those waiting, the sessions signal,
//! the HPA's desired replicas (a jobs pool: its Jobs), the pods ready,
//! booting and draining, and the nodes; the times an alert fired are
//! shaded bands. No font library is linked: plotters writes `<text>`
//! elements and sizes them by estimate, so the same report gives the same
//! bytes on every machine.

use plotters::prelude::*;

use super::engine::Sample;
use super::report::PoolReport;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 420;
const BAND: RGBColor = RGBColor(244, 199, 195);

type Line = (&'static str, RGBColor, fn(&Sample) -> u32);

/// The curves, in legend order.
const LINES: [Line; 8] = [
    ("arrivals", RGBColor(23, 190, 207), |s| s.arrivals),
    ("waiting", RGBColor(214, 39, 40), |s| s.waiting),
    ("sessions", RGBColor(255, 127, 14), |s| s.sessions),
    ("HPA desired", RGBColor(31, 119, 180), |s| s.desired),
    ("pods ready", RGBColor(44, 160, 44), |s| s.ready),
    ("pods booting", RGBColor(148, 103, 189), |s| s.booting),
    ("pods draining", RGBColor(140, 86, 75), |s| s.draining),
    ("nodes", RGBColor(127, 127, 127), |s| s.nodes),
];

/// The SVG document, or why plotters could not draw it.
pub fn svg(p: &PoolReport) -> Result<String, String> {
    let mut out = String::new();
    let drawn = draw(p, &mut out).map_err(|e| format!("error: timeline of {}: {e}", p.pool));
    drawn?;
    out.push('\n');
    Ok(out)
}

fn draw<'a>(p: &PoolReport, out: &'a mut String) -> Result<(), Box<dyn std::error::Error + 'a>> {
    let minutes = (p.simulated_seconds / 60.0).max(1.0);
    let top = p
        .timeline
        .iter()
        .flat_map(|s| LINES.iter().map(move |(_, _, f)| f(s)))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.05;
    let root = SVGBackend::with_string(out, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(&p.pool, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0f64..minutes, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("minutes")
        .y_desc("builds, pods, nodes")
        .draw()?;
    for a in &p.alerts {
        let from = a.first_firing_seconds / 60.0;
        let to = ((a.first_firing_seconds + a.firing_seconds) / 60.0).min(minutes);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(from, 0.0), (to.max(from), top)],
                BAND.mix(0.5).filled(),
            )))?
            .label(format!("{} firing", a.alert))
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], BAND.filled()));
    }
    for (name, color, value) in LINES {
        let points = p
            .timeline
            .iter()
            .map(|s| (s.t as f64 / 60_000.0, value(s) as f64));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
