//! The latency bench's plot: throughput against `max_in_flight`, as SVG.

use super::{slot_bound, Point, Settings};

pub(super) fn plot(
    path: &std::path::Path,
    s: &Settings,
    uniform: &[Point],
    slow: &[Point],
) -> Result<(), String> {
    use plotters::prelude::*;

    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let xs: Vec<f64> = uniform.iter().map(|p| p.mif as f64).collect();
    let x_min = xs.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
    let x_max = xs.iter().copied().fold(1.0, f64::max);
    let ys = uniform
        .iter()
        .map(|p| p.rate)
        .chain(slow.iter().map(|p| p.fast_rate))
        .filter(|y| *y > 0.0);
    let y_min = ys.clone().fold(f64::INFINITY, f64::min);
    let y_max = ys
        .chain(uniform.iter().map(|p| slot_bound(s, p.mif)))
        .fold(1.0, f64::max);
    let (y_lo, y_hi) = (
        10f64.powf((y_min.max(0.1)).log10().floor()),
        10f64.powf(y_max.log10().ceil()),
    );

    let root = SVGBackend::new(path, (720, 480)).into_drawing_area();
    let err = |e: DrawingAreaErrorKind<_>| format!("plot: {e:?}");
    root.fill(&WHITE).map_err(err)?;
    let caption = format!(
        "Throughput vs max_in_flight ({} ms round trip, {} ms handler)",
        s.latency.as_millis(),
        s.handler.as_millis()
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(
            (x_min / 1.5..x_max * 1.5).log_scale(),
            (y_lo..y_hi).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("max_in_flight (log)")
        .y_desc("messages/s (log)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(err)?;

    let series = [
        (
            "uniform handlers: all messages",
            uniform
                .iter()
                .map(|p| (p.mif as f64, p.rate))
                .collect::<Vec<_>>(),
            BLUE,
        ),
        (
            "1 in 100 handlers slow: fast messages",
            slow.iter()
                .map(|p| (p.mif as f64, p.fast_rate))
                .collect::<Vec<_>>(),
            RED,
        ),
    ];
    let bound: Vec<(f64, f64)> = uniform
        .iter()
        .map(|p| (p.mif as f64, slot_bound(s, p.mif)))
        .collect();
    let grey = RGBColor(150, 150, 150);
    chart
        .draw_series(LineSeries::new(bound, grey.stroke_width(1)))
        .map_err(err)?
        .label("bound: max_in_flight / (4 round trips + handler)")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1)));
    for (label, points, color) in series {
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
