//! The templates of `templates/`, parsed at build time (see
//! `build/compile_templates.rs`), and the constructors the generated code
//! uses to rebuild them. Rebuilding costs microseconds; parsing cost
//! milliseconds on every `ray-operator render`.

use std::collections::HashMap;

use handlebars::template::{
    BlockParam, ExpressionSpecBuilder, HelperTemplate, Parameter as P, Subexpression, Template,
    TemplateElement as E,
};
use handlebars::{JsonValue as Json, Path, PathSeg};

include!(concat!(env!("OUT_DIR"), "/templates.rs"));

/// A helper's booleans, named, so the generated calls read well.
struct Flags {
    block: bool,
    chain: bool,
    indent_before_write: bool,
}

/// A template without its line/column mapping: handlebars keeps that type's
/// constructor private, and it only adds a position inside our own twin
/// templates to render errors (which already name the template).
fn template(name: Option<&str>, elements: Vec<E>) -> Template {
    let mut t = Template::new();
    t.name = name.map(str::to_owned);
    t.elements = elements;
    t
}

fn helper(
    name: P,
    params: Vec<P>,
    hash_pairs: Vec<(&str, P)>,
    block_param: Option<BlockParam>,
    template: Option<Template>,
    inverse: Option<Template>,
    flags: Flags,
) -> Box<HelperTemplate> {
    let mut spec = ExpressionSpecBuilder::default();
    spec.name(name)
        .params(params)
        .hash(hash(hash_pairs))
        .omit_pre_ws(false)
        .omit_pro_ws(false);
    if let Some(bp) = block_param {
        spec.block_param(bp);
    }
    let spec = spec
        .build()
        .expect("every field of ExpressionSpec is set above");
    let mut h = HelperTemplate::new(spec, flags.block, flags.indent_before_write);
    h.template = template;
    h.inverse = inverse;
    h.chain = flags.chain;
    Box::new(h)
}

fn hash(pairs: Vec<(&str, P)>) -> HashMap<String, P> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

fn named_path(raw: &str, segs: &[&str]) -> P {
    let segs = segs
        .iter()
        .map(|s| PathSeg::Named((*s).to_owned()))
        .collect();
    P::Path(Path::Relative((segs, raw.to_owned())))
}

fn parsed_path(raw: &str) -> P {
    P::Path(Path::parse(raw).expect("the build parsed this path already"))
}

fn json_literal(text: &str) -> P {
    P::Literal(serde_json::from_str(text).expect("the build wrote this JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every compiled template equals what handlebars parses from its source
    /// at run time, so rendering with either gives the same output.
    #[test]
    fn compiled_templates_equal_a_fresh_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let helpers = std::fs::read_to_string(format!("{dir}/_helpers.tpl")).unwrap();
        let mut expected: Vec<(String, String)> = super::super::defines::defines(&helpers)
            .unwrap()
            .into_iter()
            .map(|(name, body)| (name.to_owned(), body.to_owned()))
            .collect();
        for file in super::super::templates::TEMPLATES {
            let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
            expected.push((file.to_string(), text));
        }
        let compiled = compiled();
        let names: Vec<&str> = compiled.iter().map(|(n, _)| *n).collect();
        let expected_names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, expected_names);
        for ((name, template), (_, source)) in compiled.into_iter().zip(&expected) {
            let mut parsed = Template::compile_with_name(source, name.to_owned()).unwrap();
            clear_mapping(&mut parsed);
            assert_eq!(
                template, parsed,
                "templates: {name} differs from a fresh parse"
            );
        }
    }

    /// Drops the line/column mapping of `t` and of every template inside it.
    fn clear_mapping(t: &mut Template) {
        t.mapping.clear();
        for e in &mut t.elements {
            if let E::Expression(h) | E::HtmlExpression(h) | E::HelperBlock(h) = e {
                for inner in [&mut h.template, &mut h.inverse].into_iter().flatten() {
                    clear_mapping(inner);
                }
            }
        }
    }
}
