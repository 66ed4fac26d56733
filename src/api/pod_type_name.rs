//! What makes a valid pod type name: the CRD's `podTypes[].name` and the
//! chart's `podTypes` keys follow the same rule.

/// The pattern of a pod type name; [`is_valid`] matches the same.
pub const PATTERN: &str = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";

/// The longest pod type name (a DNS label's length).
pub const MAX_LEN: usize = 63;

/// What [`is_valid`] asks, in words.
pub const RULE: &str =
    "at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";

/// Whether `name` matches [`PATTERN`] and is at most [`MAX_LEN`] long.
pub fn is_valid(name: &str) -> bool {
    let b = name.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    !b.is_empty()
        && b.len() <= MAX_LEN
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let longest = "a".repeat(MAX_LEN);
        for ok in ["rayHeadType", "a", "A1", "gpu-worker_2.x", &longest] {
            assert!(is_valid(ok), "{ok}");
        }
        let too_long = "a".repeat(MAX_LEN + 1);
        for bad in ["", "-a", "a-", "_a", "a.", "a b", "a/b", "ä", &too_long] {
            assert!(!is_valid(bad), "{bad}");
        }
        assert!(RULE.starts_with(&format!("at most {MAX_LEN} ")), "{RULE}");
    }
}
