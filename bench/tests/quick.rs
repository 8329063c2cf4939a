//! The bench runs end to end and its report is well-formed. Nothing here
//! looks at a time: timing goals live in the report, not in tests.

use std::process::Command;

#[test]
fn quick_report_is_well_formed() {
    if !cubby_testkit::require_root("quick_report_is_well_formed") {
        return;
    }
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cubby-bench"))
        .args(["--quick", "--out"])
        .arg(out_dir.path())
        .args(["report", "--n", "2", "--clients", "2", "--throughput", "2", "--density", "3", "--wrk-seconds", "1"])
        .output()
        .expect("run cubby-bench");
    assert!(
        out.status.success(),
        "cubby-bench failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.path().join("report.json")).unwrap()).unwrap();
    let rows = json["rows"].as_object().unwrap();
    for prefix in [
        "0 baseline",
        "0b baseline",
        "1 provision",
        "2 provision",
        "3 create",
        "4 stop",
        "5 wake",
        "6 delete",
        "7 API",
        "8 API",
    ] {
        let (name, row) =
            rows.iter().find(|(k, _)| k.starts_with(prefix)).unwrap_or_else(|| panic!("no `{prefix}` row"));
        for field in ["median_ms", "p95_ms", "p99_ms", "min_ms", "max_ms"] {
            assert!(row[field].as_f64().is_some_and(|v| v.is_finite() && v >= 0.0), "{name}.{field}: {row}");
        }
        assert!(row["n"].as_u64().unwrap() >= 2, "{name}: {row}");
    }
    let figures = json["figures"].as_object().unwrap();
    for needle in [
        "provision sequential vs baseline",
        "vs baseline with 2 clients",
        "throughput",
        "density: running idle tenants",
        "Cubby proxy",
        "steps of container.copy",
    ] {
        assert!(figures.keys().any(|k| k.contains(needle)), "no figure with `{needle}`: {figures:?}");
    }
    assert_eq!(figures["density: running idle tenants"], "3");
    let md = std::fs::read_to_string(out_dir.path().join("report.md")).unwrap();
    assert!(md.contains("| measure | median ms | p95 ms | p99 ms |") && md.contains("| figure | value |"), "{md}");
}
