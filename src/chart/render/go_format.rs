//! Go's and sprig's semantics of the values a template handles: truthiness,
//! `int64` and `float64` conversions, printing (`fmt.Sprint`, `printf`,
//! `quote`, float formatting) and Helm's `toYaml`. Pure functions of JSON
//! values; [`super::helpers`] makes them handlebars helpers.

use serde_json::Value;

/// Go template truthiness (also sprig's notion of "empty", negated).
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// sprig's `ternary YES NO COND`: YES when COND is truthy, else NO.
pub fn ternary<'a>(yes: &'a Value, no: &'a Value, cond: &Value) -> &'a Value {
    if truthy(cond) { yes } else { no }
}

/// sprig's `int64` (spf13/cast): floats truncate, strings parse (else 0), bools are 0/1.
pub fn int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .unwrap_or_else(|| n.as_f64().map_or(0, |f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().unwrap_or(0),
        Value::Bool(b) => *b as i64,
        _ => 0,
    }
}

/// sprig's `float64` (spf13/cast): strings parse (else 0, also when out of
/// range, as Go's `ParseFloat` fails then), bools are 0/1.
pub fn float(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(s) => s
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

/// A float64 as Go holds it: printed as a float (`1`, `0.5`, `1e+06`).
pub fn float_value(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

pub fn indent(n: i64, s: &str) -> String {
    let pad = " ".repeat(n.max(0) as usize);
    format!("{pad}{}", s.replace('\n', &format!("\n{pad}")))
}

/// Go's `fmt.Sprint` of a value decoded from JSON (`%v`).
pub fn sprint(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) if !n.is_f64() => i.to_string(),
            (_, Some(u)) if !n.is_f64() => u.to_string(),
            _ => go_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::Array(a) => format!("[{}]", a.iter().map(sprint).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}:{}", sprint(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

/// Go's `%v` of a float64 (`strconv.FormatFloat(f, 'g', -1, 64)`): the shortest
/// digits, in exponent form when the exponent is < -4 or >= 6, so `100000`
/// but `1e+06` and `1.23456789e+08`.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like Go's.
    let e = format!("{:e}", f.abs());
    let (mantissa, exp) = e.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    if exp < 0 {
        return format!("{sign}0.{}{digits}", "0".repeat((-exp - 1) as usize));
    }
    let int_len = exp as usize + 1;
    if digits.len() <= int_len {
        format!("{sign}{digits}{}", "0".repeat(int_len - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
    }
}

/// sprig's `quote`: each non-nil argument as a Go-quoted string, joined by spaces.
pub fn quote(args: &[&Value]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .filter(|v| !v.is_null())
        .map(|v| serde_json::to_string(&sprint(v)).expect("a string serializes"))
        .collect();
    quoted.join(" ")
}

/// Go's `printf` for the verbs the chart uses: `%s`, `%v`, `%d`, `%q`, `%%`.
pub fn printf(format: &str, args: &[&Value]) -> Result<String, String> {
    let mut rest = args.iter();
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let verb = chars.next().ok_or("format ends with %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let v = rest
            .next()
            .ok_or_else(|| format!("%{verb} has no argument"))?;
        match verb {
            's' | 'v' => out.push_str(&sprint(v)),
            'd' => out.push_str(&int(v).to_string()),
            'q' => out.push_str(&quote(&[v])),
            _ => return Err(format!("unsupported verb %{verb}")),
        }
    }
    Ok(out)
}

/// Helm's `toYaml`: YAML of the value as Helm holds it after a JSON round trip
/// (whole floats print as integers), block style like go-yaml, without the
/// final newline. Strings a YAML 1.1 reader (kubectl) could take for anything
/// else (`yes`, `on`, `1`, `true`, ...) are double-quoted.
pub fn to_yaml(v: &Value) -> Result<String, String> {
    let mut v = v.clone();
    super::merge::integers(&mut v);
    let mut lines = Vec::new();
    yaml_block(&v, 0, &mut lines);
    Ok(lines.join("\n"))
}

fn yaml_scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n
            .as_f64()
            .filter(|_| n.is_f64())
            .map_or_else(|| n.to_string(), |f| f.to_string()),
        Value::String(s) => yaml_string(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

fn yaml_string(s: &str) -> String {
    const AMBIGUOUS: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
    let chars_ok = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'));
    let plain = match s.chars().next() {
        Some(c) if c.is_ascii_alphabetic() || c == '/' || c == '_' => {
            chars_ok && !AMBIGUOUS.contains(&s.to_ascii_lowercase().as_str())
        }
        // `256Mi` and `100m` stay plain; `1e3`, `1_000`, `0x1F` (numbers to some reader) do not.
        Some(c) if c.is_ascii_digit() => {
            chars_ok
                && s.parse::<f64>().is_err()
                && !s.contains('_')
                && !["0x", "0o", "0b"]
                    .iter()
                    .any(|p| s.to_ascii_lowercase().starts_with(p))
        }
        _ => false,
    };
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string serializes")
    }
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
        _ => false,
    }
}

/// Appends the lines of `v` at `indent`; a list inside a map is not indented (go-yaml's style).
fn yaml_block(v: &Value, indent: usize, lines: &mut Vec<String>) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, val) in m {
                let key = format!("{pad}{}:", yaml_string(k));
                match val {
                    Value::Object(_) if is_block(val) => {
                        lines.push(key);
                        yaml_block(val, indent + 2, lines);
                    }
                    Value::Array(_) if is_block(val) => {
                        lines.push(key);
                        yaml_block(val, indent, lines);
                    }
                    _ => lines.push(format!("{key} {}", yaml_scalar(val))),
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                if is_block(item) {
                    let mut inner = Vec::new();
                    yaml_block(item, indent + 2, &mut inner);
                    let first = inner.remove(0);
                    lines.push(format!("{pad}- {}", &first[indent + 2..]));
                    lines.extend(inner);
                } else {
                    lines.push(format!("{pad}- {}", yaml_scalar(item)));
                }
            }
        }
        _ => lines.push(format!("{pad}{}", yaml_scalar(v))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Number, json};

    fn number_f64(f: f64) -> Value {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }

    #[test]
    fn ternary_picks_by_truthiness() {
        let (yes, no) = (json!("yes"), json!("no"));
        for (cond, want) in [
            (json!(true), &yes),
            (json!(0.5), &yes),
            (json!([0]), &yes),
            (json!(null), &no),
            (json!(0), &no),
            (json!(""), &no),
            (json!({}), &no),
        ] {
            assert_eq!(ternary(&yes, &no, &cond), want, "{cond}");
        }
    }

    #[test]
    fn floats_print_like_go() {
        // Expected outputs taken from `helm template` printing float64 values.
        let cases = [
            (1.0, "1"),
            (1.5, "1.5"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (123456789.0, "1.23456789e+08"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1e21, "1e+21"),
            (-3.0, "-3"),
            (2.5e-7, "2.5e-07"),
        ];
        for (f, want) in cases {
            assert_eq!(sprint(&number_f64(f)), want, "{f}");
        }
        assert_eq!(sprint(&json!(1000000)), "1000000");
    }

    #[test]
    fn numbers_from_strings_like_sprig() {
        // Expected outputs taken from `helm template` (sprig's float64 and int64).
        assert_eq!(sprint(&float_value(float(&json!("0.5")))), "0.5");
        assert_eq!(sprint(&float_value(float(&json!(3)))), "3");
        assert_eq!(sprint(&float_value(float(&json!(1000000)))), "1e+06");
        assert_eq!(float(&json!("1e999")), 0.0);
        assert_eq!(float(&json!("fast")), 0.0);
        assert_eq!(int(&json!("3")), 3);
    }

    #[test]
    fn yaml_and_printf() {
        assert_eq!(
            to_yaml(&json!({"b": 1.0, "a": [1.5]})).unwrap(),
            "a:\n- 1.5\nb: 1"
        );
        assert_eq!(
            printf("%s-%d %q", &[&json!("x"), &number_f64(3.0), &json!("y")]).unwrap(),
            "x-3 \"y\""
        );
        assert_eq!(indent(2, "a\nb"), "  a\n    b".replacen("    b", "  b", 1));
    }
}
