//! Kubernetes resource quantities (`500m`, `2Gi`, `1e3`): their value, and
//! the two grammars they are checked against, the API server's and the
//! chart's.

/// The chart's pattern of a quantity (`podTypes.*.memory`), which
/// [`is_valid`] matches: Kubernetes' unsigned quantity grammar.
pub const PATTERN: &str = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][-+]?[0-9]+)?$";

/// The value of a Kubernetes quantity (`"1"`, `"500m"`, `"1.5"`, `"1Gi"`,
/// `"512M"`, `"1e3"`); `None` for what is none, or negative.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    const SUFFIXES: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f)))
        .or_else(|| q.strip_suffix('P').map(|n| (n, 1e15)))
        .or_else(|| {
            q.strip_suffix('E')
                .filter(|n| !n.is_empty())
                .map(|n| (n, 1e18))
        })
        .unwrap_or((q, 1.0));
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * factor)
}

/// Whether `q` matches [`PATTERN`].
pub fn is_valid(q: &str) -> bool {
    let Some(rest) = after_mantissa(q) else {
        return false;
    };
    match rest {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => true,
        "n" | "u" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => true,
        _ => {
            after_exponent_sign(rest).is_some_and(|exp| !exp.is_empty() && digits(exp) == exp.len())
        }
    }
}

/// Whether `text` matches the API server's quantity pattern,
/// `^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$`, looser than [`PATTERN`].
pub fn matches_api_pattern(text: &str) -> bool {
    let rest = text.strip_prefix(['+', '-']).unwrap_or(text);
    let number = rest.len()
        - rest
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
            .len();
    if number == 0 {
        return false;
    }
    let suffix = &rest[number..];
    let suffix =
        suffix.trim_start_matches(['e', 'E', 'i', 'n', 'u', 'm', 'k', 'K', 'M', 'G', 'T', 'P']);
    let suffix = suffix.strip_prefix(['+', '-']).unwrap_or(suffix);
    suffix.chars().all(|c| c.is_ascii_digit())
}

/// How many ASCII digits `s` starts with.
pub fn digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// What follows the unsigned decimal `[0-9]+(\.[0-9]*)?|\.[0-9]+` that `s`
/// starts with; `None` when it starts with none.
pub fn after_mantissa(s: &str) -> Option<&str> {
    let int = digits(s);
    let rest = &s[int..];
    match rest.strip_prefix('.') {
        Some(frac) if int > 0 || digits(frac) > 0 => Some(&frac[digits(frac)..]),
        Some(_) => None,
        None => (int > 0).then_some(rest),
    }
}

/// What follows the `[eE][-+]?` that `s` starts with (the exponent's
/// digits, if any, and the rest); `None` when `s` starts with no `e`.
pub fn after_exponent_sign(s: &str) -> Option<&str> {
    let exp = s.strip_prefix(['e', 'E'])?;
    Some(exp.strip_prefix(['+', '-']).unwrap_or(exp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        for (q, want) in [
            ("1", 1.0),
            ("500m", 0.5),
            ("1.5", 1.5),
            ("1Gi", 1073741824.0),
            ("512Mi", 536870912.0),
            ("1G", 1e9),
            ("2k", 2000.0),
            ("1e3", 1000.0),
        ] {
            assert_eq!(parse(q), Some(want), "{q}");
        }
        assert_eq!(parse("abc"), None);
        assert_eq!(parse("-1"), None);
    }

    #[test]
    fn the_charts_pattern() {
        for ok in [
            "1Gi", "512Mi", "1", "1.5", ".5G", "1e9", "1E+3", "100m", "2.",
        ] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in ["", "Gi", "1 Gi", "1gi", "-1Gi", "1e", "abc", ".", "1.2.3"] {
            assert!(!is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn the_api_servers_pattern() {
        for (text, ok) in [
            ("1", true),
            ("0.5", true),
            ("500m", true),
            ("2Gi", true),
            ("1e3", true),
            ("-1", true),
            ("lots", false),
            ("", false),
            ("1 Gi", false),
            ("Gi", false),
        ] {
            assert_eq!(matches_api_pattern(text), ok, "{text:?}");
        }
    }

    #[test]
    fn mantissas() {
        for (s, rest) in [
            ("1", ""),
            ("1.5Gi", "Gi"),
            (".5", ""),
            ("2.e3", "e3"),
            ("007x", "x"),
        ] {
            assert_eq!(after_mantissa(s), Some(rest), "{s}");
        }
        for bad in ["", ".", ".e3", "x1", "-1"] {
            assert_eq!(after_mantissa(bad), None, "{bad}");
        }
    }
}
