//! Printing results: a table for people, the API's JSON for scripts.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde::Serialize;

/// Prints `items` as JSON when asked, else as a table with `header`, one
/// row per item as `row` writes it.
pub fn print<T: Serialize>(json: bool, items: &[T], header: &[&str], row: impl Fn(&T) -> Vec<String>) {
    if json {
        println!("{}", serde_json::to_string_pretty(items).expect("API values serialise"));
        return;
    }
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY).set_header(header.to_vec());
    for item in items {
        table.add_row(row(item));
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
