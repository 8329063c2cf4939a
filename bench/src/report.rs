//! Rendering a report as markdown.

use crate::scenarios::Report;

pub fn markdown(r: &Report) -> String {
    let mut out = format!("## Cubby bench: {} ({})\n\n", r.title, r.machine);
    if !r.rows.is_empty() {
        out.push_str(
            "| measure | median ms | p95 ms | p99 ms | min ms | max ms | n |\n|---|---:|---:|---:|---:|---:|---:|\n",
        );
        for (name, s) in &r.rows {
            out.push_str(&format!(
                "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} |\n",
                s.median_ms, s.p95_ms, s.p99_ms, s.min_ms, s.max_ms, s.n
            ));
        }
    }
    if !r.figures.is_empty() {
        out.push_str("\n| figure | value |\n|---|---:|\n");
        for (name, v) in &r.figures {
            out.push_str(&format!("| {name} | {v} |\n"));
        }
    }
    for note in &r.notes {
        out.push_str(&format!("\n- {note}"));
    }
    out.push('\n');
    out
}
