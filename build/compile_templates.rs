//! Compiles the handlebars templates of `templates/` at build time.
//!
//! Parsing the templates was three quarters of a `ray-operator render` run
//! (pest's line/column lookup is quadratic in a template's length). So the
//! build parses each template once, with the same handlebars the binary
//! uses, and writes `$OUT_DIR/templates.rs`: Rust code that rebuilds each
//! parsed `Template` with the constructors of `src/chart/render/compiled.rs`. A
//! unit test there checks that every rebuilt template equals a fresh parse.

use std::fmt::Write;

use handlebars::template::{
    BlockParam, ExpressionSpecBuilder, HelperTemplate, Parameter, Template, TemplateElement,
};
use handlebars::{JsonValue, Path, PathSeg};

#[path = "../src/chart/render/defines.rs"]
mod defines;

/// Writes the compiled form of every `templates/*.yaml` and every define of
/// `templates/_helpers.tpl` to `out`.
pub fn generate(dir: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file)).map_err(|e| format!("templates/{file}: {e}"))
    };
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    files.sort();
    let helpers = read("_helpers.tpl")?;
    let mut sources: Vec<(String, String, String)> = Vec::new(); // (name, where, text)
    for (name, body) in defines::defines(&helpers)? {
        sources.push((
            name.into(),
            format!("templates/_helpers.tpl: {name}"),
            body.into(),
        ));
    }
    for file in files {
        let text = read(&file)?;
        sources.push((file.clone(), format!("templates/{file}"), text));
    }

    let mut code = String::from(
        "/// Every template and define of `templates/`, parsed at build time.\n\
         pub fn compiled() -> Vec<(&'static str, Template)> {\n    vec![\n",
    );
    for (name, place, text) in &sources {
        let parsed =
            Template::compile_with_name(text, name.clone()).map_err(|e| format!("{place}: {e}"))?;
        let expr = template(&parsed).map_err(|e| format!("{place}: {e}"))?;
        writeln!(code, "        ({name:?}, {expr}),").expect("write to String");
    }
    code.push_str("    ]\n}\n");
    std::fs::write(out, code).map_err(|e| format!("{}: {e}", out.display()))
}

fn template(t: &Template) -> Result<String, String> {
    let elements = t
        .elements
        .iter()
        .map(element)
        .collect::<Result<Vec<_>, _>>()?
        .join(", ");
    // The line/column mapping is left out: see `template` in compiled.rs.
    Ok(format!(
        "template({:?}, vec![{elements}])",
        t.name.as_deref()
    ))
}

fn element(e: &TemplateElement) -> Result<String, String> {
    Ok(match e {
        TemplateElement::RawString(s) => format!("E::RawString({s:?}.into())"),
        TemplateElement::Comment(s) => format!("E::Comment({s:?}.into())"),
        TemplateElement::Expression(h) => format!("E::Expression({})", helper(h)?),
        TemplateElement::HtmlExpression(h) => format!("E::HtmlExpression({})", helper(h)?),
        TemplateElement::HelperBlock(h) => format!("E::HelperBlock({})", helper(h)?),
        other => {
            return Err(format!(
                "{other:?}: partials and decorators are not supported; use `include`"
            ));
        }
    })
}

fn helper(h: &HelperTemplate) -> Result<String, String> {
    let optional = |t: &Option<Template>| match t {
        Some(t) => template(t).map(|t| format!("Some({t})")),
        None => Ok("None".into()),
    };
    let block_param = match &h.block_param {
        None => "None".into(),
        Some(BlockParam::Single(p)) => format!("Some(BlockParam::Single({}))", param(p)?),
        Some(BlockParam::Pair((a, b))) => {
            format!("Some(BlockParam::Pair(({}, {})))", param(a)?, param(b)?)
        }
        Some(other) => return Err(format!("unsupported block parameter {other:?}")),
    };
    Ok(format!(
        "helper({}, vec![{}], vec![{}], {block_param}, {}, {}, Flags {{ block: {}, chain: {}, indent_before_write: {} }})",
        param(&h.name)?,
        params(&h.params)?,
        hash(h)?,
        optional(&h.template)?,
        optional(&h.inverse)?,
        h.block,
        h.chain,
        indent_before_write(h)?,
    ))
}

fn params(ps: &[Parameter]) -> Result<String, String> {
    Ok(ps
        .iter()
        .map(param)
        .collect::<Result<Vec<_>, _>>()?
        .join(", "))
}

fn hash(h: &HelperTemplate) -> Result<String, String> {
    let mut pairs: Vec<_> = h.hash.iter().collect();
    pairs.sort_by_key(|(k, _)| *k);
    let pairs = pairs
        .into_iter()
        .map(|(k, v)| Ok(format!("({k:?}, {})", param(v)?)))
        .collect::<Result<Vec<_>, String>>()?;
    Ok(pairs.join(", "))
}

fn param(p: &Parameter) -> Result<String, String> {
    Ok(match p {
        Parameter::Name(n) => format!("P::Name({n:?}.into())"),
        Parameter::Path(Path::Local((level, name, raw))) => {
            format!("P::Path(Path::Local(({level}, {name:?}.into(), {raw:?}.into())))")
        }
        Parameter::Path(Path::Relative((segs, raw))) => {
            let named: Option<Vec<String>> = segs
                .iter()
                .map(|s| match s {
                    PathSeg::Named(n) => Some(format!("{n:?}")),
                    _ => None,
                })
                .collect();
            match named {
                Some(named) => format!("named_path({raw:?}, &[{}])", named.join(", ")),
                // `this`, `@root`, `..`: segments handlebars keeps private; parse the raw path.
                None => format!("parsed_path({raw:?})"),
            }
        }
        Parameter::Literal(json) => literal(json),
        Parameter::Subexpression(s) => match s.as_element() {
            TemplateElement::Expression(h) if !h.block && h.block_param.is_none() => {
                format!(
                    "P::Subexpression(Subexpression::new({}, vec![{}], hash(vec![{}])))",
                    param(&h.name)?,
                    params(&h.params)?,
                    hash(h)?
                )
            }
            other => return Err(format!("unsupported subexpression {other:?}")),
        },
        other => return Err(format!("unsupported parameter {other:?}")),
    })
}

fn literal(json: &JsonValue) -> String {
    match json {
        JsonValue::String(s) => format!("P::Literal(Json::String({s:?}.into()))"),
        JsonValue::Bool(b) => format!("P::Literal(Json::Bool({b}))"),
        JsonValue::Null => "P::Literal(Json::Null)".into(),
        // Numbers, lists and maps: serde_json reads back exactly what it wrote.
        other => format!("json_literal({:?})", other.to_string()),
    }
}

/// `indent_before_write` is private to handlebars; find which value the
/// public constructor needs to rebuild this helper exactly.
fn indent_before_write(h: &HelperTemplate) -> Result<bool, String> {
    for indent in [false, true] {
        let mut spec = ExpressionSpecBuilder::default();
        spec.name(h.name.clone())
            .params(h.params.clone())
            .hash(h.hash.clone())
            .omit_pre_ws(false)
            .omit_pro_ws(false);
        if let Some(bp) = &h.block_param {
            spec.block_param(bp.clone());
        }
        let spec = spec.build().map_err(|e| e.to_string())?;
        let mut rebuilt = HelperTemplate::new(spec, h.block, indent);
        rebuilt.template = h.template.clone();
        rebuilt.inverse = h.inverse.clone();
        rebuilt.chain = h.chain;
        if rebuilt == *h {
            return Ok(indent);
        }
    }
    Err(format!("cannot rebuild helper {:?}", h.name))
}
