//! No import cycles between the crate's modules.
//!
//! A cycle means neither side can be read, tested or moved without the other,
//! so the layering in `src/` only holds if nothing imports back in a loop. Two
//! levels are checked:
//! - files: module A's file names something in B's file and B names A;
//! - siblings: under each parent, every descendant counts as the child of that
//!   parent it lives in (`crate::operator::reconcile::apply` is `reconcile`
//!   under `crate::operator`), so two parts cannot lean on each other through
//!   their insides. A child using its parent's own items is only a file edge.
//!
//! The reader is a small lexer and scanner, not a compiler: it follows `use`
//! trees, paths in code, `pub use` re-exports and `mod` declarations, and skips
//! comments, string literals and `#[cfg(test)]` items (tests may import
//! freely). Inline `mod x { .. }` blocks count as part of their file.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// Source files by path under `src/` ("operator/mod.rs"), so the table test
/// can feed trees from memory.
type Files = BTreeMap<String, String>;
/// (from module, to module) -> where the first such reference is.
type Edges = BTreeMap<(String, String), String>;
/// Tokens and their lines: identifiers, `::`, single punctuation characters,
/// and string literals as one token starting with `"`.
type Toks = [(String, usize)];

fn is_ident(s: &str) -> bool {
    s.starts_with(|c: char| c.is_alphabetic() || c == '_')
}

fn tk(t: &Toks, k: usize) -> &str {
    t.get(k).map_or("", |x| x.0.as_str())
}

/// Comments vanish and literals become one token, so nothing inside them can
/// look like a path.
fn lex(src: &str) -> Vec<(String, usize)> {
    let c: Vec<char> = src.chars().collect();
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let count = |from: usize, f: &dyn Fn(char) -> bool| {
        c[from.min(c.len())..].iter().take_while(|&&x| f(x)).count()
    };
    let text = |a: usize, b: usize| c[a.min(c.len())..b.min(c.len())].iter().collect::<String>();
    let (mut i, mut line, mut out) = (0, 1, Vec::new());
    while i < c.len() {
        let (ch, start) = (c[i], i);
        let mut tok = None;
        if ch == '/' && at(i + 1) == '/' {
            i += count(i, &|x| x != '\n');
        } else if ch == '/' && at(i + 1) == '*' {
            let mut depth = 0; // block comments nest
            while i < c.len() {
                let d = match (c[i], at(i + 1)) {
                    ('/', '*') => 1,
                    ('*', '/') => -1,
                    _ => 0,
                };
                (depth, i) = (depth + d, i + 1 + usize::from(d != 0));
                if depth == 0 {
                    break;
                }
            }
        } else if ch.is_alphabetic() || ch == '_' {
            i += count(i, &|x| x.is_alphanumeric() || x == '_');
            let (word, hashes) = (text(start, i), count(i, &|x| x == '#'));
            if matches!(word.as_str(), "r" | "br" | "cr") && at(i + hashes) == '"' {
                // A raw string ends at a quote followed by as many '#' as opened it.
                let s = i + hashes + 1;
                i = s;
                while i < c.len() && !(c[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#')) {
                    i += 1;
                }
                tok = Some(format!("\"{}", text(s, i)));
                i += 1 + hashes;
            } else if !(word == "r" && hashes == 1
                || matches!(word.as_str(), "b" | "c") && matches!(at(i), '"' | '\''))
            {
                tok = Some(word); // (else the prefix of r#ident, b"..", c"..", b'.')
            }
        } else if ch == '"' {
            i += 1;
            while i < c.len() && c[i] != '"' {
                i += 1 + usize::from(c[i] == '\\');
            }
            tok = Some(format!("\"{}", text(start + 1, i)));
            i += 1;
        } else if ch == '\'' {
            // A char literal ('x', '\'', '\u{..}') closes; a lifetime ('a) does not.
            i += match (at(i + 1), at(i + 2)) {
                ('\\', _) => 4 + count(i + 3, &|x| x != '\''),
                (_, '\'') => 3,
                _ => 1,
            };
        } else if ch.is_ascii_digit() {
            i += count(i, &|x| x.is_alphanumeric() || x == '_');
        } else {
            let sep = ch == ':' && at(i + 1) == ':';
            i += 1 + usize::from(sep);
            tok = (!ch.is_whitespace()).then(|| text(start, i));
        }
        out.extend(tok.map(|t| (t, line)));
        line += c[start..i.min(c.len())]
            .iter()
            .filter(|&&x| x == '\n')
            .count();
    }
    out
}

/// One leaf of a `use` tree: its path, the name it binds (None for `_` and
/// globs), whether it is a glob, and its line.
struct Use(Vec<String>, Option<String>, bool, usize);

#[derive(Default)]
struct FileInfo {
    children: Vec<(String, Option<String>)>, // `mod x;` and its #[path]
    uses: Vec<Use>,
    paths: Vec<(Vec<String>, usize)>, // `a::b::c` in code
    defs: BTreeSet<String>,           // item names, to tell own items from re-exports
}

/// Index of the bracket closing the one at `s` (or `s` if it opens none).
fn close(t: &Toks, s: usize) -> usize {
    let mut depth = 0;
    for (k, (tok, _)) in t.iter().enumerate().skip(s) {
        depth += match tok.as_str() {
            "(" | "[" | "{" => 1,
            ")" | "]" | "}" => -1,
            _ => 0,
        };
        if depth <= 0 {
            return k;
        }
    }
    t.len()
}

/// Past the item at `i`: its `;`, its `{ .. }` body, or up to the enclosing `}`.
fn skip_item(t: &Toks, mut i: usize) -> usize {
    while i < t.len() {
        match tk(t, i) {
            ";" | "," => return i + 1,
            "{" => return close(t, i) + 1,
            "(" | "[" => i = close(t, i) + 1,
            ")" | "]" | "}" => return i,
            _ => i += 1,
        }
    }
    i
}

/// The `use` tree at `t[*i]`, under `path`, as leaves into `out`.
fn use_tree(t: &Toks, i: &mut usize, mut path: Vec<String>, line: usize, out: &mut Vec<Use>) {
    loop {
        *i += 1;
        match tk(t, *i - 1) {
            "{" => {
                while !matches!(tk(t, *i), "}" | "") {
                    let before = *i;
                    use_tree(t, i, path.clone(), line, out);
                    *i += usize::from(tk(t, *i) == "," || *i == before);
                }
                *i += 1;
                return;
            }
            "*" => return out.push(Use(path, None, true, line)),
            s if is_ident(s) => {
                path.push(s.to_string());
                if tk(t, *i) == "::" {
                    *i += 1;
                    continue;
                }
                if path.last().is_some_and(|l| l == "self") {
                    path.pop(); // `a::{self}` is `a`
                }
                let mut name = path.last().cloned();
                if tk(t, *i) == "as" {
                    name = Some(tk(t, *i + 1).to_string()).filter(|n| n != "_");
                    *i += 2;
                }
                return out.push(Use(path, name, false, line));
            }
            _ => {
                *i -= 1; // `::std::..` (another crate), or not a tree
                return;
            }
        }
    }
}

fn parse(t: &Toks) -> FileInfo {
    let id = |k: usize| Some(tk(t, k)).filter(|s| is_ident(s)).unwrap_or("");
    let mut f = FileInfo::default();
    let (mut i, mut test, mut path_attr) = (0, false, None);
    while i < t.len() {
        if tk(t, i) == "#" {
            let s = i + 1 + usize::from(tk(t, i + 1) == "!"); // the '['
            let e = close(t, s);
            let has = |w: &str| t[s.min(e)..e].iter().any(|x| x.0 == w);
            test |= id(s + 1) == "cfg" && has("test") && !has("not");
            if id(s + 1) == "path" && tk(t, s + 3).starts_with('"') {
                path_attr = Some(tk(t, s + 3)[1..].to_string());
            }
            i = e + 1;
            continue;
        }
        if std::mem::take(&mut test) {
            (path_attr, i) = (None, skip_item(t, i)); // not built outside tests
            continue;
        }
        let (attr, line, prev) = (path_attr.take(), t[i].1, i.wrapping_sub(1));
        match id(i) {
            "mod" if tk(t, i + 2) == ";" => f.children.push((id(i + 1).to_string(), attr)),
            "use" => {
                i += 1;
                use_tree(t, &mut i, Vec::new(), line, &mut f.uses);
                continue;
            }
            "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static" | "union" | "mod" => {
                f.defs.insert(id(i + 1).to_string());
            }
            "macro_rules" => {
                f.defs.insert(id(i + 2).to_string());
            }
            // A path starts here, unless it is `pub(in a::b)`, which only limits visibility.
            w if !w.is_empty()
                && tk(t, i + 1) == "::"
                && tk(t, prev) != "::"
                && !(tk(t, prev) == "in" && tk(t, prev.wrapping_sub(1)) == "(") =>
            {
                let (mut p, mut k) = (vec![w.to_string()], i + 1);
                while tk(t, k) == "::" && !id(k + 1).is_empty() {
                    p.push(id(k + 1).to_string());
                    k += 2;
                }
                f.paths.push((p, line));
                i = k;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    f
}

struct Module {
    file: String,
    info: FileInfo,
}

/// `a/./b/../c.rs` -> `a/c.rs`, for `#[path]`s that climb.
fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    out.join("/")
}

/// Every module reachable from `root` by `mod x;`, keyed by `crate::a::b`.
fn load(files: &Files, root: &str) -> BTreeMap<String, Module> {
    let mut mods = BTreeMap::new();
    let mut todo = vec![("crate".to_string(), root.to_string(), true)];
    while let Some((name, file, owns_dir)) = todo.pop() {
        let src = files
            .get(&file)
            .unwrap_or_else(|| panic!("{name}: no src/{file}"));
        let info = parse(&lex(src));
        let dir = file.rfind('/').map_or("", |k| &file[..=k]);
        // mod.rs, lib.rs and #[path] files keep children beside them; a.rs in a/.
        let own = match owns_dir {
            true => dir.to_string(),
            false => format!("{}/", file.trim_end_matches(".rs")),
        };
        for (child, attr) in &info.children {
            let flat = format!("{own}{child}.rs");
            let (path, owns) = match attr {
                Some(p) => (normalize(&format!("{dir}{p}")), true),
                None if files.contains_key(&flat) => (flat, false),
                None => (format!("{own}{child}/mod.rs"), true),
            };
            todo.push((format!("{name}::{child}"), path, owns));
        }
        mods.insert(name, Module { file, info });
    }
    mods
}

struct Graph(BTreeMap<String, Module>);

impl Graph {
    /// `path` as written in module `m`, made absolute; None if it leaves the crate.
    fn absolute(&self, m: &str, path: &[String], depth: usize) -> Option<Vec<String>> {
        let mut base: Vec<String> = m.split("::").map(String::from).collect();
        let info = &self.0[m].info;
        let (first, rest) = path.split_first()?;
        match first.as_str() {
            "crate" => base.truncate(1),
            "self" => {}
            "super" => {
                let supers = path.iter().take_while(|s| *s == "super").count();
                base.truncate(base.len().checked_sub(supers).filter(|&n| n > 0)?);
                base.extend(path[supers..].iter().cloned());
                return Some(base);
            }
            _ if info.children.iter().any(|(c, _)| c == first) => base.push(first.clone()),
            // A name a `use` brought in (`use crate::naming;` .. `naming::f()`).
            _ if depth < 8 => {
                let u = info.uses.iter().find(|u| u.1.as_ref() == Some(first))?;
                base = self.absolute(m, &u.0, depth + 1)?;
            }
            _ => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The module an absolute path points into: the longest module prefix, or
    /// where that module's re-export of the next segment comes from.
    fn target(&self, abs: &[String], depth: usize) -> Option<String> {
        let k = (1..=abs.len())
            .rev()
            .find(|&k| self.0.contains_key(&abs[..k].join("::")))?;
        let m = abs[..k].join("::");
        Some(
            abs.get(k)
                .and_then(|item| self.source(&m, item, depth))
                .unwrap_or(m),
        )
    }

    /// Where `item`, as seen from module `m`, is defined: `m` itself, or whatever
    /// its `use`s (named ones first, as in Rust, then globs) bring it from. A
    /// name found nowhere is taken to come through m's first glob: derives make
    /// items no text defines (kube's `CustomResource` makes `RayCluster`).
    fn source(&self, m: &str, item: &str, depth: usize) -> Option<String> {
        let info = &self.0[m].info;
        if info.defs.contains(item) || depth >= 8 {
            return Some(m.to_string());
        }
        let mut fallback = None;
        for glob in [false, true] {
            for Use(path, name, _, _) in info.uses.iter().filter(|u| u.2 == glob) {
                let Some(abs) = self.absolute(m, path, depth + 1) else {
                    continue;
                };
                let g = abs.join("::");
                if !glob && name.as_deref() == Some(item) {
                    return self.target(&abs, depth + 1);
                } else if glob && self.0.contains_key(&g) {
                    if let Some(s) = self.source(&g, item, depth + 1) {
                        return Some(s);
                    }
                    fallback.get_or_insert(g);
                }
            }
        }
        fallback
    }

    fn edges(&self) -> Edges {
        let mut e = Edges::new();
        for (m, Module { file, info }) in &self.0 {
            let uses = info.uses.iter().map(|u| (&u.0, u.3));
            for (path, line) in uses.chain(info.paths.iter().map(|(p, l)| (p, *l))) {
                let Some(t) = self.absolute(m, path, 0).and_then(|a| self.target(&a, 0)) else {
                    continue;
                };
                if t != *m {
                    e.entry((m.clone(), t))
                        .or_insert(format!("src/{file}:{line}"));
                }
            }
        }
        e
    }
}

/// For every node, the shortest cycle through it (breadth-first), each cycle
/// once, starting at its smallest node.
fn cycles(edges: &Edges) -> BTreeSet<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (a, b) in edges.keys() {
        next.entry(a).or_default().push(b);
    }
    let mut found = BTreeSet::new();
    for &start in next.keys() {
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        'bfs: while let Some(n) = queue.pop_front() {
            for &m in next.get(n).into_iter().flatten() {
                if m == start {
                    let (mut cycle, mut x) = (vec![n.to_string()], n);
                    while x != start {
                        x = prev[x];
                        cycle.push(x.to_string());
                    }
                    cycle.reverse();
                    let first = (0..cycle.len()).min_by_key(|&k| &cycle[k]).unwrap_or(0);
                    cycle.rotate_left(first);
                    found.insert(cycle);
                    break 'bfs;
                }
                if !prev.contains_key(m) {
                    prev.insert(m, n);
                    queue.push_back(m);
                }
            }
        }
    }
    found
}

/// One line per cycle (`level: a -> b -> a`), then one line per hop saying why.
fn report(files: &Files, root: &str) -> Vec<(String, Vec<String>)> {
    let graph = Graph(load(files, root));
    let file_edges = graph.edges();
    let mut levels = vec![("file level".to_string(), file_edges.clone())];
    for parent in graph
        .0
        .keys()
        .filter(|p| !graph.0[*p].info.children.is_empty())
    {
        // Collapse both ends to the child of `parent` they live in.
        let child = |x: &str| {
            let rest = x.strip_prefix(parent.as_str())?.strip_prefix("::")?;
            Some(format!("{parent}::{}", rest.split("::").next()?))
        };
        let mut sib = Edges::new();
        for ((a, b), at) in &file_edges {
            if let (Some(ca), Some(cb)) = (child(a), child(b))
                && ca != cb
            {
                sib.entry((ca, cb)).or_insert(format!("{a} -> {b} at {at}"));
            }
        }
        levels.push((format!("siblings under {parent}"), sib));
    }
    let (mut out, mut seen) = (Vec::new(), BTreeSet::new());
    for (level, edges) in levels {
        // (Two sibling files in a loop are said once, at the file level.)
        for cycle in cycles(&edges)
            .into_iter()
            .filter(|c| seen.insert(c.clone()))
        {
            let hops = cycle.iter().zip(cycle.iter().cycle().skip(1));
            let why = hops.map(|(a, b)| format!("{a} -> {b}: {}", edges[&(a.clone(), b.clone())]));
            out.push((
                format!("{level}: {} -> {}", cycle.join(" -> "), cycle[0]),
                why.collect(),
            ));
        }
    }
    out
}

fn read_tree(dir: &Path, prefix: &str, files: &mut Files) {
    for entry in std::fs::read_dir(dir).expect("read src/") {
        let path = entry.expect("dir entry").path();
        let name = format!("{prefix}{}", path.file_name().unwrap().to_string_lossy());
        if path.is_dir() {
            read_tree(&path, &format!("{name}/"), files);
        } else if name.ends_with(".rs") {
            files.insert(
                name,
                std::fs::read_to_string(&path).expect("read a source file"),
            );
        }
    }
}

#[test]
fn no_import_cycles_between_modules() {
    let mut files = Files::new();
    read_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        "",
        &mut files,
    );
    let mut text = String::new();
    // The library and the binary are separate crates, each with its own `crate`.
    for root in ["lib.rs", "main.rs"]
        .into_iter()
        .filter(|r| files.contains_key(*r))
    {
        for (cycle, why) in report(&files, root) {
            text += &format!("({root}) {cycle}\n    {}\n", why.join("\n    "));
        }
    }
    assert!(
        text.is_empty(),
        "import cycles between modules (break one hop of each):\n{text}"
    );
}

/// The reader's table: `### case`, the cycles it must report (`expect:`; none
/// means no cycle), then each file as `--- path` and its text.
const CASES: &str = r###"
### two-file cycle: use tree with braces, self and renames; path in code
expect: file level: crate::a -> crate::b -> crate::a
--- lib.rs
mod a;
mod b;
--- a.rs
use crate::{b::{self as bee, B as Bee}};
pub fn f() {}
--- b.rs
pub struct B;
pub fn g() { crate::a::f() }

### three files, through a name a `use` brought in
expect: file level: crate::a -> crate::b::inner -> crate::c -> crate::a
expect: siblings under crate: crate::a -> crate::b -> crate::c -> crate::a
--- lib.rs
mod a; mod b; mod c;
--- a.rs
use crate::b;
pub fn f() { b::inner::g() }
--- b.rs
pub mod inner;
--- b/inner.rs
pub fn g() { crate::c::h() }
--- c.rs
use super::a::f as ff;

### sibling cycle through a descendant (name.rs and mod.rs layouts)
expect: siblings under crate::p: crate::p::a -> crate::p::b -> crate::p::a
--- lib.rs
mod p;
--- p.rs
mod a;
mod b;
--- p/a/mod.rs
mod deep;
pub struct W;
--- p/a/deep.rs
pub fn z() { super::super::b::f(); }
--- p/b.rs
use super::a::W;
pub fn f() {}

### a cycle only in comments and strings does not count
--- lib.rs
mod a; mod b;
--- a.rs
use crate::b::B;
--- b.rs
pub struct B;
// use crate::a::A;
/* crate::a::f() /* nested */ crate::a::g() */
/// see [crate::a::A]
pub const S: &str = "crate::a::f() \" crate::a::g()";
pub const R: &str = r#"use crate::a::A; "still inside"#;
pub const Q: (char, &str) = ('"', "crate::a::x");
pub fn f<'x>(s: &'x str) -> &'x str { s }

### test modules may import freely
--- lib.rs
mod a; mod b;
--- a.rs
use crate::b::B;
--- b.rs
pub struct B;
#[cfg(test)]
mod tests {
    use crate::a::*;
    fn t() { crate::a::f() }
}
#[cfg(test)]
#[path = "b_more.rs"]
mod more;
--- b_more.rs
use crate::a::A;

### super:: to the parent's own item is a file edge
expect: file level: crate::p -> crate::p::c -> crate::p
--- lib.rs
mod p;
--- p/mod.rs
mod c;
pub struct Ctx;
pub fn run() { c::go(); }
--- p/c.rs
use super::Ctx;
pub fn go() {}

### no cycle: a re-export used through super:: points at its source, not the parent
--- lib.rs
mod p;
--- p/mod.rs
mod a; mod b;
pub use a::Thing;
pub fn run() { b::go(); }
--- p/a.rs
pub struct Thing;
--- p/b.rs
use super::Thing;
pub fn go() {}

### glob re-export (also of a derived item) in a #[path] file
--- lib.rs
#[path = "odd/place.rs"]
mod p;
--- odd/place.rs
mod inner; mod user;
pub use inner::*;
pub fn f() { user::g() }
--- odd/inner.rs
pub struct Thing;
#[derive(Gen)]
pub struct GenSpec;
--- odd/user.rs
use super::{Thing as T, Gen};
pub fn g() {}
"###;

#[test]
fn reader_finds_cycles_in_small_trees() {
    for case in CASES.split("\n### ").skip(1) {
        let (name, body) = case.split_once('\n').unwrap();
        let want: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("expect: "))
            .collect();
        let files: Files = format!("\n{body}")
            .split("\n--- ")
            .skip(1)
            .map(|f| {
                f.split_once('\n')
                    .map(|(p, s)| (p.to_string(), s.to_string()))
                    .unwrap()
            })
            .collect();
        let got: Vec<String> = report(&files, "lib.rs")
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        assert_eq!(got, want, "case: {name}");
    }
}
