//! One SVG chart per scenario: target pods remaining over time, every run of kdrain and of kubectl on
//! the same axes, with the floor marked.

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use crate::measure::{RunResult, Tool};

/// Pods-remaining points as a step function: the count holds until the next change.
pub fn step_points(timeline: &[(f64, usize)], end: f64) -> Vec<(f64, f64)> {
    let mut points = Vec::with_capacity(timeline.len() * 2 + 1);
    let mut last: Option<usize> = None;
    for &(t, n) in timeline {
        if let Some(prev) = last {
            points.push((t, prev as f64));
        }
        points.push((t, n as f64));
        last = Some(n);
    }
    if let (Some(n), Some(&(t_last, _))) = (last, timeline.last())
        && end > t_last
    {
        points.push((end, n as f64));
    }
    points
}

fn color(tool: Tool) -> RGBColor {
    match tool {
        Tool::Kdrain => RGBColor(0x1f, 0x77, 0xb4),
        Tool::Kubectl => RGBColor(0xd6, 0x27, 0x28),
    }
}

/// Draws the chart for one scenario into `path`.
pub fn draw(path: &Path, title: &str, runs: &[RunResult], floor: Option<f64>) -> Result<()> {
    let ends: Vec<f64> = runs
        .iter()
        .map(|r| {
            r.observed
                .wall_seconds
                .or_else(|| r.observed.timeline.last().map(|p| p.0))
                .unwrap_or(0.0)
        })
        .collect();
    let x_max = ends.iter().copied().chain(floor).fold(1.0_f64, f64::max) * 1.05;
    let y_max = runs
        .iter()
        .map(|r| r.observed.targets)
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.05;

    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("chart: {e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)
        .map_err(|e| anyhow!("chart: {e}"))?;
    chart
        .configure_mesh()
        .x_desc("seconds since the drain command started")
        .y_desc("target pods remaining")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .x_label_formatter(&|v| format!("{v:.1}"))
        .draw()
        .map_err(|e| anyhow!("chart: {e}"))?;

    for tool in [Tool::Kdrain, Tool::Kubectl] {
        let mut labelled = false;
        for (run, end) in runs.iter().zip(&ends).filter(|(r, _)| r.tool == tool) {
            let style = color(tool).stroke_width(2);
            let series = chart
                .draw_series(LineSeries::new(
                    step_points(&run.observed.timeline, *end),
                    style,
                ))
                .map_err(|e| anyhow!("chart: {e}"))?;
            if !labelled {
                labelled = true;
                let c = color(tool);
                series.label(tool.label()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            }
        }
    }
    if let Some(floor) = floor {
        let grey = RGBColor(0x55, 0x55, 0x55);
        chart
            .draw_series(LineSeries::new(
                vec![(floor, 0.0), (floor, y_max)],
                grey.stroke_width(1),
            ))
            .map_err(|e| anyhow!("chart: {e}"))?
            .label(format!("floor {floor:.2} s"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(1))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| anyhow!("chart: {e}"))?;
    root.present().map_err(|e| anyhow!("chart: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::sample_run;

    #[test]
    fn draws_an_svg_with_both_tools_and_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        let runs = [
            sample_run(Tool::Kdrain, 0, 3.8, 20),
            sample_run(Tool::Kubectl, 0, 16.0, 60),
        ];
        draw(&path, "B2 test", &runs, Some(3.5)).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("kdrain") && svg.contains("kubectl") && svg.contains("floor 3.50 s"));
        assert!(svg.matches("<polyline").count() >= 3);
    }

    #[test]
    fn steps_hold_until_the_next_change() {
        let points = step_points(&[(0.0, 3), (1.0, 2), (2.5, 0)], 3.0);
        assert_eq!(
            points,
            vec![
                (0.0, 3.0),
                (1.0, 3.0),
                (1.0, 2.0),
                (2.5, 2.0),
                (2.5, 0.0),
                (3.0, 0.0)
            ]
        );
    }
}
