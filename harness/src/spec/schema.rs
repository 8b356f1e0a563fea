//! The JSON Schema of spec files, derived from the document types ([`SpecDocument`] and what it
//! holds; descriptions from their doc comments). `l1 schema` prints it and
//! `docs/src/specs/spec.schema.json` is the committed copy; a test fails when that copy is
//! stale. It checks the shape (types, field names, required fields, enum values); legality and
//! catalog names are `l1 validate`'s.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{GateMethod, SpecDocument};
use crate::selection::{Scalar, Selection};

/// Where the committed copy lives, from the repository root.
pub const COMMITTED: &str = "docs/src/specs/spec.schema.json";

/// The command that rewrites the committed copy.
pub const REGENERATE: &str =
    "cargo run --release --bin l1 -- schema > docs/src/specs/spec.schema.json";

/// The schema (draft-07, which every editor's YAML language server reads).
pub fn schema() -> serde_json::Value {
    let mut schema = SchemaSettings::draft07()
        .into_generator()
        .into_root_schema_for::<SpecDocument>();
    schema.insert("title".into(), "l1 spec file".into());
    let mut value = schema.to_value();
    plain_descriptions(&mut value);
    value
}

/// Descriptions come from doc comments: their rustdoc links (``[`Remeasure`]``) read as code
/// (`` `Remeasure` ``) in an editor's hover.
fn plain_descriptions(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                match value {
                    serde_json::Value::String(text) if key == "description" => {
                        *text = text.replace("[`", "`").replace("`]", "`");
                    }
                    _ => plain_descriptions(value),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(plain_descriptions),
        _ => {}
    }
}

/// The schema as `l1 schema` prints it and the committed copy holds it: pretty JSON with a
/// trailing newline.
pub fn text() -> String {
    let mut out = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    out.push('\n');
    out
}

impl JsonSchema for GateMethod {
    fn schema_name() -> Cow<'static, str> {
        "GateMethod".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A gate method: `topk5` (the top k combos each beat the baseline by the margin), `pareto` (the winner lies on the throughput-latency frontier), `regression` (no metric regresses by more than epsilon), `manual` (no verdict, every combo surfaced), `drift` (the baseline against its calibration), `fidelity` (greedy outputs stay within thresholds of the baseline's).",
            "type": "string",
            "enum": GateMethod::NAMES,
        })
    }
}

impl JsonSchema for Scalar {
    fn schema_name() -> Cow<'static, str> {
        "Scalar".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One value, taken as text (`16`, `true` and `off` are all values).",
            "type": ["string", "boolean", "number"],
        })
    }
}

impl JsonSchema for Selection {
    fn schema_name() -> Cow<'static, str> {
        "Selection".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let item = generator.subschema_for::<Scalar>();
        json_schema!({
            "description": "`all` (every value the engine offers), a list of values, or one value (a pin).",
            "anyOf": [
                { "type": ["string", "boolean", "integer"] },
                { "type": "array", "items": item, "minItems": 1 },
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_every_top_level_field_and_requires_the_unskippable_ones() {
        let s = schema();
        let props = s["properties"].as_object().map(|p| p.len()).unwrap_or(0);
        assert_eq!(props, 15, "{s:#}");
        assert_eq!(s["additionalProperties"], false);
        assert_eq!(
            s["required"],
            serde_json::json!(["kind", "name", "targets"])
        );
    }
}
