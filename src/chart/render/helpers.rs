//! The handlebars glue: registers helpers that behave like the Go template
//! and sprig functions the chart uses (their semantics are in
//! [`super::go_format`]), so `templates/*.yaml` can be written like `charts/ray/templates/*.yaml`:
//! `include`, `nindent`, `toYaml`, `quote`, `printf`, `print`, `int64`,
//! `float64`, `default`, `ternary`, `hasKey`, `kebabcase`, `sumOf`,
//! `float64Values`, `imageRepository`, `fail`, `contains`, `trunc`,
//! `trimSuffix`, `hasSuffix`.

use handlebars::{
    Context, Handlebars, Helper, HelperDef, RenderContext, RenderError, RenderErrorReason,
    ScopedJson,
};
use serde_json::Value;

use super::go_format::{float, float_value, indent, int, printf, quote, sprint, ternary, to_yaml};
use crate::naming::kebab_case;

/// The function behind a pure helper.
type PureFn = fn(&[&Value]) -> Result<Value, String>;

/// A helper that is a pure function of its parameters.
struct Pure(PureFn);

impl HelperDef for Pure {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        _: &'reg Handlebars<'reg>,
        _: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let args: Vec<&Value> = h.params().iter().map(|p| p.value()).collect();
        (self.0)(&args)
            .map(ScopedJson::Derived)
            .map_err(|e| RenderErrorReason::Other(format!("{}: {e}", h.name())).into())
    }
}

/// `include NAME CONTEXT`: renders a define (a partial of templates/_helpers.tpl) to a string.
struct Include;

impl HelperDef for Include {
    fn call_inner<'reg: 'rc, 'rc>(
        &self,
        h: &Helper<'rc>,
        r: &'reg Handlebars<'reg>,
        ctx: &'rc Context,
        _: &mut RenderContext<'reg, 'rc>,
    ) -> Result<ScopedJson<'rc>, RenderError> {
        let name = h
            .param(0)
            .and_then(|p| p.value().as_str())
            .unwrap_or_default();
        let text = match h.param(1).map(|p| p.value()) {
            // `include NAME this` at a template's top level: the same data, not a copy of it.
            Some(data) if std::ptr::eq(data, ctx.data()) => r.render_with_context(name, ctx)?,
            Some(data) => r.render_with_context(name, &Context::from(data.clone()))?,
            None => r.render_with_context(name, &Context::from(Value::Null))?,
        };
        Ok(ScopedJson::Derived(Value::String(text)))
    }
}

/// Marks the message of a `fail`, so the renderer reports it without template
/// noise: a pure helper's error is `NAME: MESSAGE`, so `fail`'s is this and MESSAGE.
pub const FAIL_PREFIX: &str = "fail: ";

pub fn register(hb: &mut Handlebars<'_>) {
    hb.register_helper("include", Box::new(Include));
    let pure: &[(&str, PureFn)] = &[
        // `fail MESSAGE`: stops rendering with MESSAGE, like Helm's `fail`.
        ("fail", |a| {
            Err(a.first().map(|v| sprint(v)).unwrap_or_default())
        }),
        ("nindent", |a| {
            Ok(Value::String(format!(
                "\n{}",
                indent(int(arg(a, 0)), &sprint(arg(a, 1)))
            )))
        }),
        ("indent", |a| {
            Ok(Value::String(indent(int(arg(a, 0)), &sprint(arg(a, 1)))))
        }),
        ("toYaml", |a| to_yaml(arg(a, 0)).map(Value::String)),
        ("quote", |a| Ok(Value::String(quote(a)))),
        ("printf", |a| {
            printf(&sprint(arg(a, 0)), a.get(1..).unwrap_or_default()).map(Value::String)
        }),
        ("print", |a| {
            Ok(Value::String(
                a.iter().map(|v| sprint(v)).collect::<Vec<_>>().join(" "),
            ))
        }),
        ("int64", |a| Ok(Value::from(int(arg(a, 0))))),
        ("float64", |a| Ok(float_value(float(arg(a, 0))))),
        ("float64Values", |a| {
            // float64Values MAP: MAP with every value `float64`, what the Go
            // template builds with `dict`, `range` and `set`.
            let map = arg(a, 0).as_object().into_iter().flatten();
            Ok(Value::Object(
                map.map(|(k, v)| (k.clone(), float_value(float(v))))
                    .collect(),
            ))
        }),
        ("imageRepository", |a| {
            Ok(Value::String(image_repository(&sprint(arg(a, 0))).into()))
        }),
        // default DEFAULT VALUE: VALUE unless it is empty.
        ("default", |a| {
            Ok(ternary(arg(a, 1), arg(a, 0), arg(a, 1)).clone())
        }),
        ("ternary", |a| {
            Ok(ternary(arg(a, 0), arg(a, 1), arg(a, 2)).clone())
        }),
        ("hasKey", |a| {
            let key = sprint(arg(a, 1));
            Ok(Value::Bool(
                arg(a, 0).as_object().is_some_and(|m| m.contains_key(&key)),
            ))
        }),
        ("kebabcase", |a| {
            Ok(Value::String(kebab_case(&sprint(arg(a, 0)))))
        }),
        ("sumOf", |a| {
            // sumOf MAP FIELD: the sum of int64 (FIELD | default 0) over MAP's values,
            // what the Go template computes with `range` and `add`.
            let field = sprint(arg(a, 1));
            let maps = arg(a, 0).as_object().into_iter().flat_map(|m| m.values());
            Ok(Value::from(
                maps.map(|v| int(v.get(&field).unwrap_or(&Value::Null)))
                    .sum::<i64>(),
            ))
        }),
        ("contains", |a| {
            Ok(Value::Bool(sprint(arg(a, 1)).contains(&sprint(arg(a, 0)))))
        }),
        ("trunc", |a| {
            let (n, s) = (int(arg(a, 0)), sprint(arg(a, 1)));
            Ok(Value::String(if n >= 0 {
                s.chars().take(n as usize).collect()
            } else {
                s
            }))
        }),
        ("hasSuffix", |a| {
            Ok(Value::Bool(sprint(arg(a, 1)).ends_with(&sprint(arg(a, 0)))))
        }),
        ("trimSuffix", |a| {
            let (suffix, s) = (sprint(arg(a, 0)), sprint(arg(a, 1)));
            Ok(Value::String(
                s.strip_suffix(suffix.as_str()).unwrap_or(&s).to_string(),
            ))
        }),
    ];
    for (name, f) in pure {
        hb.register_helper(name, Box::new(Pure(*f)));
    }
}

static NULL: Value = Value::Null;

fn arg<'a>(a: &[&'a Value], i: usize) -> &'a Value {
    a.get(i).copied().unwrap_or(&NULL)
}

/// An image reference without its tag and digest, what the Go template
/// computes with `regexReplaceAll "(:[^/:@]*)?(@.*)?$" IMAGE ""`:
/// `rayproject/ray:nightly` -> `rayproject/ray`, `host:5000/a/b@sha256:x` -> `host:5000/a/b`.
pub fn image_repository(image: &str) -> &str {
    let name = image.split('@').next().unwrap_or_default();
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail_is_marked() {
        let mut hb = Handlebars::new();
        register(&mut hb);
        let e = hb.render_template(r#"{{fail "no"}}"#, &()).unwrap_err();
        let want = format!("{FAIL_PREFIX}no");
        assert!(
            matches!(e.reason(), RenderErrorReason::Other(m) if *m == want),
            "{e:?}"
        );
    }

    #[test]
    fn image_repositories() {
        let cases = [
            ("rayproject/ray:nightly", "rayproject/ray"),
            ("rayproject/ray", "rayproject/ray"),
            ("rayproject/ray@sha256:abc", "rayproject/ray"),
            ("rayproject/ray:1.3.0@sha256:abc", "rayproject/ray"),
            (
                "docker.io/rayproject/ray:2.47.1",
                "docker.io/rayproject/ray",
            ),
            ("reg:5000/rayproject/ray:nightly", "reg:5000/rayproject/ray"),
            ("reg:5000/rayproject/ray", "reg:5000/rayproject/ray"),
            ("rayproject/ray-operator:0.1.0", "rayproject/ray-operator"),
            ("a:b:c", "a:b"),
        ];
        for (image, want) in cases {
            assert_eq!(image_repository(image), want, "{image}");
        }
    }
}
