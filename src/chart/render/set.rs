//! `--set` / `--set-string` parsing, a port of Helm's `pkg/strvals` parser.
//!
//! `a.b=1,c[0].d=x,e={p,q},f=a\,b` sets nested keys; values are typed like
//! Helm types them (`true`/`false`/`null` case-insensitively, base-10 int64
//! not starting with `0`, `0`; everything else a string) unless
//! `--set-string` forces strings. Errors use Helm's wording.

use serde_json::{Map, Value};

/// Helm's limit on list indexes.
const MAX_INDEX: usize = 65536;
/// Helm's limit on `a.b.c...` nesting.
const MAX_NESTED_NAME_LEVEL: usize = 30;

/// Parses one `--set` (or, with `strings`, `--set-string`) argument into `dest`.
pub fn parse_into(line: &str, dest: &mut Map<String, Value>, strings: bool) -> Result<(), String> {
    let mut p = Parser {
        chars: line.chars().collect(),
        pos: 0,
        strings,
    };
    loop {
        match p.key(dest, 0) {
            Ok(()) => continue,
            Err(Stop::Eof) => return Ok(()),
            Err(Stop::Err(e)) => return Err(e),
        }
    }
}

enum Stop {
    /// Helm's io.EOF: the input ended (not an error at the top level).
    Eof,
    Err(String),
}

impl From<String> for Stop {
    fn from(e: String) -> Self {
        Stop::Err(e)
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    strings: bool,
}

impl Parser {
    fn read(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Reads up to (and consumes) one of `stop`, handling `\x` escapes. `None`
    /// as the stop character means the input ended.
    fn runes_until(&mut self, stop: &[char]) -> (String, Option<char>) {
        let mut v = String::new();
        loop {
            match self.read() {
                None => return (v, None),
                Some(c) if stop.contains(&c) => return (v, Some(c)),
                Some('\\') => match self.read() {
                    None => return (v, None),
                    Some(next) => v.push(next),
                },
                Some(c) => v.push(c),
            }
        }
    }

    fn typed(&self, s: String) -> Value {
        if self.strings {
            Value::String(s)
        } else {
            typed_val(s)
        }
    }

    fn key(&mut self, data: &mut Map<String, Value>, level: usize) -> Result<(), Stop> {
        let (k, last) = self.runes_until(&['=', '[', ',', '.']);
        match last {
            None if k.is_empty() => Err(Stop::Eof),
            None => Err(format!("key {k:?} has no value").into()),
            Some('[') => {
                let i = self.key_index()?;
                let list = match data.get(&k) {
                    None => Vec::new(),
                    Some(Value::Array(a)) => a.clone(),
                    Some(_) => {
                        return Err(format!("unable to parse key: {k:?} is not a list").into());
                    }
                };
                let list = self.list_item(list, i, level)?;
                set(data, &k, Value::Array(list));
                Ok(())
            }
            Some('=') => match self.val_list() {
                Ok(list) => {
                    set(data, &k, Value::Array(list));
                    Ok(())
                }
                Err(ListErr::Eof) => {
                    set(data, &k, Value::String(String::new()));
                    Err(Stop::Eof)
                }
                Err(ListErr::NotList) => {
                    let (rs, _) = self.runes_until(&[',']);
                    let v = self.typed(rs);
                    set(data, &k, v);
                    Ok(())
                }
                Err(ListErr::Err(e)) => Err(e.into()),
            },
            Some(',') => {
                set(data, &k, Value::String(String::new()));
                Err(format!("key {k:?} has no value (cannot end with ,)").into())
            }
            Some(_) => {
                // '.': a nested map.
                let level = level + 1;
                if level > MAX_NESTED_NAME_LEVEL {
                    return Err(format!(
                        "value name nested level is greater than maximum supported nested level of {MAX_NESTED_NAME_LEVEL}"
                    )
                    .into());
                }
                let mut inner = match data.get(&k) {
                    None => Map::new(),
                    Some(Value::Object(m)) => m.clone(),
                    Some(_) => {
                        return Err(format!("unable to parse key: {k:?} is not a map").into());
                    }
                };
                let r = self.key(&mut inner, level);
                if r.is_ok() && inner.is_empty() {
                    return Err(format!("key map {k:?} has no value").into());
                }
                if !inner.is_empty() {
                    set(data, &k, Value::Object(inner));
                }
                r
            }
        }
    }

    fn key_index(&mut self) -> Result<i64, Stop> {
        let (v, last) = self.runes_until(&[']']);
        if last.is_none() {
            return Err(Stop::Err("error parsing index: EOF".into()));
        }
        v.parse::<i64>().map_err(|_| {
            Stop::Err(format!(
                "error parsing index: strconv.Atoi: parsing {v:?}: invalid syntax"
            ))
        })
    }

    fn list_item(
        &mut self,
        mut list: Vec<Value>,
        i: i64,
        level: usize,
    ) -> Result<Vec<Value>, Stop> {
        if i < 0 {
            return Err(format!("negative {i} index not allowed").into());
        }
        let (k, last) = self.runes_until(&['[', '.', '=']);
        if !k.is_empty() {
            return Err(format!("unexpected data at end of array index: {k:?}").into());
        }
        match last {
            None => Err(Stop::Eof),
            Some('=') => match self.val_list() {
                Ok(vl) => Ok(set_index(list, i, Value::Array(vl))?),
                Err(ListErr::Eof) => Ok(set_index(list, i, Value::String(String::new()))?),
                Err(ListErr::NotList) => {
                    let (rs, _) = self.runes_until(&[',']);
                    let v = self.typed(rs);
                    Ok(set_index(list, i, v)?)
                }
                Err(ListErr::Err(e)) => Err(e.into()),
            },
            Some('[') => {
                let next = self.key_index()?;
                let current = match list.get(i as usize) {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) => a.clone(),
                    Some(_) => return Err("unable to parse key: not a list".to_string().into()),
                };
                let inner = self.list_item(current, next, level)?;
                Ok(set_index(list, i, Value::Array(inner))?)
            }
            Some(_) => {
                // '.': a map inside the list.
                let mut inner = match list.get_mut(i as usize) {
                    Some(Value::Object(m)) => std::mem::take(m),
                    _ => Map::new(),
                };
                self.key(&mut inner, level)?;
                if let Some(slot) = list.get_mut(i as usize) {
                    *slot = Value::Null;
                }
                Ok(set_index(list, i, Value::Object(inner))?)
            }
        }
    }

    /// `{a,b}` lists; `NotList` (nothing consumed) when the value does not start with `{`.
    fn val_list(&mut self) -> Result<Vec<Value>, ListErr> {
        match self.chars.get(self.pos) {
            None => return Err(ListErr::Eof),
            Some('{') => self.pos += 1,
            Some(_) => return Err(ListErr::NotList),
        }
        let mut list = Vec::new();
        loop {
            let (rs, last) = self.runes_until(&[',', '}']);
            match last {
                None => return Err(ListErr::Err("list must terminate with '}'".into())),
                Some('}') => {
                    if self.chars.get(self.pos) == Some(&',') {
                        self.pos += 1;
                    }
                    list.push(self.typed(rs));
                    return Ok(list);
                }
                Some(_) => list.push(self.typed(rs)),
            }
        }
    }
}

enum ListErr {
    Eof,
    NotList,
    Err(String),
}

fn set(data: &mut Map<String, Value>, key: &str, v: Value) {
    if !key.is_empty() {
        data.insert(key.to_string(), v);
    }
}

fn set_index(mut list: Vec<Value>, i: i64, v: Value) -> Result<Vec<Value>, String> {
    if i < 0 {
        return Err(format!("negative {i} index not allowed"));
    }
    let i = i as usize;
    if i > MAX_INDEX {
        return Err(format!(
            "index of {i} is greater than maximum supported index of {MAX_INDEX}"
        ));
    }
    if list.len() <= i {
        list.resize(i + 1, Value::Null);
    }
    list[i] = v;
    Ok(list)
}

/// Helm's `typedVal`: bool, null, int64, else string.
fn typed_val(s: String) -> Value {
    if s.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if s.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if s.eq_ignore_ascii_case("null") {
        return Value::Null;
    }
    if s == "0" {
        return Value::from(0i64);
    }
    if !s.is_empty()
        && !s.starts_with('0')
        && let Some(i) = parse_go_int64(&s)
    {
        return Value::from(i);
    }
    Value::String(s)
}

/// Go's `strconv.ParseInt(s, 10, 64)`: optional sign, ASCII digits, no `_`.
fn parse_go_int64(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(lines: &[&str], strings: bool) -> Result<Value, String> {
        let mut m = Map::new();
        for l in lines {
            parse_into(l, &mut m, strings)?;
        }
        Ok(Value::Object(m))
    }

    #[test]
    fn table() {
        let cases: &[(&str, Value)] = &[
            ("a=1", json!({"a": 1})),
            ("a=b,c=d", json!({"a": "b", "c": "d"})),
            ("a.b.c=true", json!({"a": {"b": {"c": true}}})),
            (
                "a=TRUE,b=False,c=NULL",
                json!({"a": true, "b": false, "c": null}),
            ),
            (
                "a=0,b=007,c=-3,d=1.5,e=+4",
                json!({"a": 0, "b": "007", "c": -3, "d": "1.5", "e": 4}),
            ),
            ("a=", json!({"a": ""})),
            ("a={x,y,3}", json!({"a": ["x", "y", 3]})),
            ("a={x},b=2", json!({"a": ["x"], "b": 2})),
            ("a=x\\,y", json!({"a": "x,y"})),
            ("a\\.b=1", json!({"a.b": 1})),
            ("a[0]=x,a[2]=z", json!({"a": ["x", null, "z"]})),
            ("a[0].b=1,a[0].c=2", json!({"a": [{"b": 1, "c": 2}]})),
            ("a[1][0]=x", json!({"a": [null, ["x"]]})),
            ("a.b[0].key=gpu", json!({"a": {"b": [{"key": "gpu"}]}})),
            ("a=9223372036854775808", json!({"a": "9223372036854775808"})),
            ("", json!({})),
        ];
        for (line, want) in cases {
            assert_eq!(&parse(&[line], false).unwrap(), want, "{line}");
        }
    }

    #[test]
    fn set_string_keeps_strings() {
        assert_eq!(
            parse(&["a=1,b=true,c=null,d={1,2}"], true).unwrap(),
            json!({"a": "1", "b": "true", "c": "null", "d": ["1", "2"]})
        );
    }

    #[test]
    fn later_sets_override_and_merge() {
        assert_eq!(
            parse(&["a.b=1,a.c=2", "a.b=3", "l[1]=y", "l[0]=x"], false).unwrap(),
            json!({"a": {"b": 3, "c": 2}, "l": ["x", "y"]})
        );
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            ("a", "key \"a\" has no value"),
            ("a,b=1", "key \"a\" has no value (cannot end with ,)"),
            ("a.=1", "key map \"a\" has no value"),
            ("a[x]=1", "error parsing index"),
            ("a[-1]=1", "negative -1 index not allowed"),
            ("a[0]x=1", "unexpected data at end of array index"),
            ("a={x,y", "list must terminate with '}'"),
            ("a[70000]=1", "greater than maximum supported index"),
        ];
        for (line, want) in cases {
            let err = parse(&[line], false).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
        assert!(
            parse(&["a=1", "a.b=2"], false)
                .unwrap_err()
                .contains("not a map")
        );
    }
}
