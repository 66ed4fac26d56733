//! sprig's `kebabcase` (xstrings.ToKebabCase), the name a pod type's key
//! takes in its pods' names. The chart calls it from its templates, and the
//! operator names the pods it makes alike.

/// What separates the words of a kebab-cased name.
const SEP: char = '-';

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Word {
    Invalid,
    Number,
    Upper,
    Alphabet,
    Connector,
    Punct,
    Other,
}

fn is_connector(c: char) -> bool {
    c == '-' || c == '_' || c.is_whitespace()
}

/// xstrings' isAlphabet: a letter, but not a CJK one.
fn is_alphabet(c: char) -> bool {
    c.is_alphabetic() && (c as u32) < 0x3400
}

fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation() && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~')
}

/// xstrings' `nextWord`: the type and length (in chars) of the word starting `s`.
fn next_word(s: &[char]) -> (Word, usize) {
    let Some(&c) = s.first() else {
        return (Word::Invalid, 0);
    };
    let run = |from: usize, keep: &dyn Fn(char) -> bool| {
        from + s[from..].iter().take_while(|c| keep(**c)).count()
    };
    if is_connector(c) {
        (Word::Connector, run(1, &is_connector))
    } else if is_punct(c) {
        (Word::Punct, run(1, &is_punct))
    } else if c.is_uppercase() {
        match s.get(1) {
            None => (Word::Upper, 1),
            Some(&n) if n.is_uppercase() => {
                let end = run(1, &|c: char| c.is_uppercase());
                // "HTTPStatus" splits as "HTTP" + "Status".
                if end < s.len() && is_alphabet(s[end]) {
                    (Word::Upper, end - 1)
                } else {
                    (Word::Upper, end)
                }
            }
            Some(&n) if is_alphabet(n) => (
                Word::Upper,
                run(1, &|c: char| is_alphabet(c) && !c.is_uppercase()),
            ),
            Some(_) => (Word::Upper, 1),
        }
    } else if is_alphabet(c) {
        (
            Word::Alphabet,
            run(1, &|c: char| is_alphabet(c) && !c.is_uppercase()),
        )
    } else if c.is_numeric() {
        (Word::Number, run(1, &char::is_numeric))
    } else {
        let other = |c: char| !(is_connector(c) || is_alphabet(c) || c.is_numeric() || is_punct(c));
        (Word::Other, run(1, &other))
    }
}

fn push_lower(buf: &mut String, wt: Word, word: &[char]) {
    for &c in word {
        if wt != Word::Upper && wt != Word::Connector {
            buf.push(c);
        } else if is_connector(c) {
            buf.push(SEP);
        } else {
            buf.extend(c.to_lowercase());
        }
    }
}

/// The word at `pos` in `chars`, and `pos` moved past it.
fn next<'a>(chars: &'a [char], pos: &mut usize) -> (Word, &'a [char]) {
    let (wt, len) = next_word(&chars[*pos..]);
    let word = &chars[*pos..*pos + len];
    *pos += len;
    (wt, word)
}

/// After a number that starts a word: the letters and digits that follow
/// belong to it, then a separator unless the name ends or a connector or
/// punctuation comes. Returns the word after them.
fn rest_of_number<'a>(
    chars: &'a [char],
    pos: &mut usize,
    buf: &mut String,
    (mut wt, mut word): (Word, &'a [char]),
) -> (Word, &'a [char]) {
    while wt == Word::Alphabet || wt == Word::Number {
        push_lower(buf, wt, word);
        (wt, word) = next(chars, pos);
    }
    if !matches!(wt, Word::Invalid | Word::Punct | Word::Connector) {
        buf.push(SEP);
    }
    (wt, word)
}

/// sprig's `kebabcase` (xstrings.ToKebabCase): `rayWorkerType` -> `ray-worker-type`,
/// `HTTPServer` -> `http-server`, `Bld4Floor` -> `bld4-floor`, `HTTP2xx` -> `http-2xx`.
pub fn kebab_case(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let chars = chars.as_slice();
    let mut buf = String::new();
    let mut pos = 0;
    let (mut wt, mut word) = next(chars, &mut pos);
    while pos < chars.len() {
        if wt != Word::Connector {
            push_lower(&mut buf, wt, word);
        }
        let (prev, last) = (wt, word);
        (wt, word) = next(chars, &mut pos);
        match prev {
            Word::Number => (wt, word) = rest_of_number(chars, &mut pos, &mut buf, (wt, word)),
            Word::Connector => push_lower(&mut buf, prev, last),
            Word::Punct => {}
            _ => {
                if wt != Word::Number {
                    if wt != Word::Connector && wt != Word::Punct {
                        buf.push(SEP);
                    }
                    continue;
                }
                if pos >= chars.len() {
                    continue;
                }
                let number = word;
                (wt, word) = next(chars, &mut pos);
                // A number followed by a non-letter belongs to the previous word: "Bld4Floor".
                if wt != Word::Alphabet {
                    push_lower(&mut buf, Word::Number, number);
                    if wt != Word::Connector && wt != Word::Punct {
                        buf.push(SEP);
                    }
                    continue;
                }
                // Lower-case letters after a number start a new word: "HTTP2xx".
                buf.push(SEP);
                push_lower(&mut buf, Word::Number, number);
                (wt, word) = rest_of_number(chars, &mut pos, &mut buf, (wt, word));
            }
        }
    }
    push_lower(&mut buf, wt, word);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_sprig() {
        // Expected outputs taken from `helm template` (sprig v3, xstrings v1.5).
        let cases = [
            ("rayHeadType", "ray-head-type"),
            ("rayWorkerType", "ray-worker-type"),
            ("HTTPServer", "http-server"),
            ("worker2x", "worker-2x"),
            ("Bld4Floor", "bld4-floor"),
            ("gpu_worker", "gpu-worker"),
            ("GPUWorker", "gpu-worker"),
            ("a-b", "a-b"),
            ("a b", "a-b"),
            ("worker-GPU", "worker-gpu"),
            ("rayWorkerTypeV100", "ray-worker-type-v100"),
            ("Worker", "worker"),
            ("w", "w"),
            ("W2", "w2"),
            ("HTTP2xx", "http-2xx"),
            ("abc123def", "abc-123def"),
            ("ab12CD", "ab12-cd"),
            ("x_Y_z", "x-y-z"),
            ("__x", "--x"),
            ("x--y", "x--y"),
            ("a.b", "a.b"),
        ];
        for (input, want) in cases {
            assert_eq!(kebab_case(input), want, "{input}");
        }
    }
}
