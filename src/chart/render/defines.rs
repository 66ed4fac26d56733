//! Splits `templates/_helpers.tpl` into its defines. Shared with `build.rs`,
//! which compiles every template at build time.

/// Splits `_helpers.tpl` into its `{{#*inline "NAME"}}BODY{{/inline}}` blocks,
/// trimming the whitespace around each body as Go's `{{- define -}}` does.
pub fn defines(text: &str) -> Result<Vec<(&str, &str)>, String> {
    const OPEN: &str = "{{#*inline \"";
    const CLOSE: &str = "{{/inline}}";
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let after = &rest[start + OPEN.len()..];
        let (name, after) = after
            .split_once("\"}}")
            .ok_or("templates/_helpers.tpl: unterminated inline")?;
        let (body, after) = after
            .split_once(CLOSE)
            .ok_or_else(|| format!("templates/_helpers.tpl: {name}: no {CLOSE}"))?;
        out.push((name, body.trim()));
        rest = after;
    }
    Ok(out)
}
