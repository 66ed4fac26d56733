//! Converts the chart's `values.yaml` and `Chart.yaml` to JSON at build time,
//! so a `ray-operator render` without `-f` reads no YAML at all (YAML parsing
//! of the defaults was a quarter of a render's work). `src/chart/render/templates.rs`
//! tests that the JSON equals what reading the YAML at run time gives.

/// Writes `values.json` and `chart.json` for the chart in `chart` to `out`.
pub fn generate(chart: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
    for (file, json) in [("values.yaml", "values.json"), ("Chart.yaml", "chart.json")] {
        let path = chart.join(file);
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let value: serde_json::Value =
            serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        std::fs::write(out.join(json), value.to_string())
            .map_err(|e| format!("{}: {e}", out.join(json).display()))?;
    }
    Ok(())
}
