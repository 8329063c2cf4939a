//! Printing results: a table for people, the API's JSON for scripts.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

/// Prints `value` as JSON when asked, else the table `rows` describes.
pub fn print<T: Serialize>(json: bool, value: &T, header: &[&str], rows: Vec<Vec<String>>) {
    if json {
        println!("{}", serde_json::to_string_pretty(value).expect("API values serialise"));
        return;
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

/// Prints a single object as `key: value` lines, or JSON.
pub fn print_one<T: Serialize>(json: bool, value: &T) {
    if json {
        println!("{}", serde_json::to_string_pretty(value).expect("API values serialise"));
        return;
    }
    if let serde_json::Value::Object(map) = serde_json::to_value(value).expect("API values serialise") {
        let width = map.keys().map(String::len).max().unwrap_or(0);
        for (k, v) in map {
            let shown = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            println!("{k:>width$}: {shown}");
        }
    }
}
