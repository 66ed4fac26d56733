//! The chart side: the values type and its schema, `render` (the chart's
//! manifests with `helm template` semantics) and `diff` (rendered vs live).

pub mod diff;
pub mod render;
pub mod values;
