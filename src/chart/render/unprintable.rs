//! Characters no values may hold: YAML does not allow them raw (DEL, the C1
//! controls but NEL, U+FFFE, U+FFFF). Helm writes the values out as YAML for
//! its schema check, leaves these unescaped and fails ("yaml: control
//! characters are not allowed"); the templates would print them raw too (they
//! quote strings as JSON does, escaping only the C0 controls), into documents
//! no YAML reader takes. Tabs, newlines and the other C0 controls pass: both
//! escape them.

use serde_json::{Map, Value};

/// The first key or string holding such a character, named by its path
/// (`podTypes.rayWorkerType.nodeSelector.pool`).
pub fn check(values: &Map<String, Value>) -> Result<(), String> {
    check_map(values, "")
}

fn check_map(map: &Map<String, Value>, path: &str) -> Result<(), String> {
    for (key, value) in map {
        if let Some(c) = unprintable(key) {
            let place = if path.is_empty() { "values" } else { path };
            return Err(format!(
                "{place}: the key {key:?} holds {}, which YAML does not allow",
                code_point(c)
            ));
        }
        let path = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        check_value(value, &path)?;
    }
    Ok(())
}

fn check_value(value: &Value, path: &str) -> Result<(), String> {
    match value {
        Value::String(s) => match unprintable(s) {
            Some(c) => Err(format!(
                "{path}: {s:?} holds {}, which YAML does not allow",
                code_point(c)
            )),
            None => Ok(()),
        },
        Value::Object(m) => check_map(m, path),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_value(v, &format!("{path}[{i}]"))),
        Value::Null | Value::Bool(_) | Value::Number(_) => Ok(()),
    }
}

fn unprintable(s: &str) -> Option<char> {
    s.chars()
        .find(|c| matches!(c, '\u{7f}'..='\u{84}' | '\u{86}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}'))
}

fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_json(v: Value) -> Result<(), String> {
        check(v.as_object().unwrap())
    }

    #[test]
    fn names_the_key_or_value_and_the_character() {
        let cases = [
            (
                json!({"podTypes": {"head": {"rayResources": {"C\u{7f}": 1}}}}),
                r#"podTypes.head.rayResources: the key "C\u{7f}" holds U+007F, which YAML does not allow"#,
            ),
            (
                json!({"image": "ray\u{9f}"}),
                r#"image: "ray\u{9f}" holds U+009F, which YAML does not allow"#,
            ),
            (
                json!({"imagePullSecrets": [{"name": "a"}, {"name": "\u{fffe}"}]}),
                r#"imagePullSecrets[1].name: "\u{fffe}" holds U+FFFE, which YAML does not allow"#,
            ),
            (
                json!({"\u{80}": 1}),
                r#"values: the key "\u{80}" holds U+0080, which YAML does not allow"#,
            ),
        ];
        for (values, want) in cases {
            assert_eq!(check_json(values).unwrap_err(), want);
        }
    }

    #[test]
    fn what_yaml_escapes_or_allows_passes() {
        let fine = json!({"a": "tab\t, newline\n, bell\u{7}, NEL\u{85}, nbsp\u{a0}, \u{2028}, \u{feff}, 😀", "n": 1, "l": [null, true]});
        assert_eq!(check_json(fine), Ok(()));
    }
}
