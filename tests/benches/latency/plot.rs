//! The latency bench's plot: throughput against `max_in_flight`, as SVG.

use super::{four_trip_bound, two_trip_bound, Point, Settings};

/// A line of the plot: its label, its points and its colour.
type Series = (String, Vec<(f64, f64)>, plotters::style::RGBColor);

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
    let mut mifs: Vec<usize> = uniform.iter().map(|p| p.mif).collect();
    mifs.dedup();
    let x_min = xs.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
    let x_max = xs.iter().copied().fold(1.0, f64::max);
    let ys = uniform
        .iter()
        .map(|p| p.rate)
        .chain(slow.iter().map(|p| p.fast_rate))
        .filter(|y| *y > 0.0);
    let y_min = ys.clone().fold(f64::INFINITY, f64::min);
    let y_max = ys
        .chain(uniform.iter().map(|p| two_trip_bound(s, p.mif)))
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

    // The first variant (the defaults unless told otherwise) in blue, the
    // others in green, brown and magenta; the fast messages of the slow
    // scenario in red.
    let colors = [BLUE, RGBColor(0, 150, 70), RGBColor(120, 80, 0), MAGENTA];
    let mut series: Vec<Series> = s
        .consumers
        .iter()
        .enumerate()
        .map(|(v, variant)| {
            let label = if s.consumers.len() == 1 {
                "uniform handlers: all messages".to_owned()
            } else {
                format!("uniform handlers, {}", variant.label())
            };
            let points = uniform
                .iter()
                .filter(|p| p.variant == v)
                .map(|p| (p.mif as f64, p.rate))
                .collect();
            (label, points, colors[v % colors.len()])
        })
        .collect();
    series.push((
        "1 in 100 handlers slow: fast messages".to_owned(),
        slow.iter().map(|p| (p.mif as f64, p.fast_rate)).collect(),
        RED,
    ));
    let bounds = [
        (
            "bound: max_in_flight / (handler + 2 round trips)",
            mifs.iter()
                .map(|&m| (m as f64, two_trip_bound(s, m)))
                .collect::<Vec<_>>(),
            RGBColor(90, 90, 90),
        ),
        (
            "older bound: max_in_flight / (handler + 4 round trips)",
            mifs.iter()
                .map(|&m| (m as f64, four_trip_bound(s, m)))
                .collect::<Vec<_>>(),
            RGBColor(180, 180, 180),
        ),
    ];
    for (label, points, grey) in bounds {
        chart
            .draw_series(LineSeries::new(points, grey.stroke_width(1)))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1))
            });
    }
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
