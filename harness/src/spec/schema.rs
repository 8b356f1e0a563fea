//! The JSON Schema of spec files, derived from the document types ([`SpecDocument`] and what it
//! holds; descriptions from their doc comments). `l1 schema` prints it and
//! `docs/src/specs/spec.schema.json` is the committed copy; a test fails when that copy is
//! stale. It checks the shape (types, field names, required fields, enum values) and where a
//! field may be written: tune fields only in `kind: tune`, `gates` only in sweeps, each gate
//! field only on the methods that take it ([`GATE_FIELDS`]); legality, ranges and catalog names
//! are `l1 validate`'s.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use serde_json::{Value, json};

use super::{AGAINST, AGAINST_STORED, GATE_FIELDS, GateMethod, SpecDocument, TUNE_FIELDS, Takes};
use crate::model::PRECISION_NAMES;
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
    placement_rules(&mut value);
    value
}

/// `field` absent (or null) where the condition holds.
fn absent(fields: &[&str]) -> Value {
    let props: serde_json::Map<String, Value> = fields
        .iter()
        .map(|f| ((*f).to_string(), json!({ "type": "null" })))
        .collect();
    json!({ "properties": props })
}

/// `method` is one of `methods`.
fn method_in(methods: &[GateMethod]) -> Value {
    let names: Vec<&str> = methods.iter().map(|m| m.name()).collect();
    json!({ "properties": { "method": { "enum": names } }, "required": ["method"] })
}

/// The gate compares with stored results.
fn against_stored() -> Value {
    json!({ "properties": { "against": { "const": "stored" } }, "required": ["against"] })
}

/// Where fields may be written, which serde's flat document types do not say: the tune fields
/// only in tune specs and `gates` only in sweeps (a tune spec never `mode: quick`), each gate
/// field only on the gates [`GATE_FIELDS`] lets take it, `against` one of [`AGAINST`] and
/// `stored` only on [`AGAINST_STORED`], and `per_dtype` keyed by precision class.
fn placement_rules(schema: &mut Value) {
    let mut kinds = vec![
        json!({
            "if": { "properties": { "kind": { "const": "sweep" } }, "required": ["kind"] },
            "then": {
                "properties": TUNE_FIELDS.iter().map(|f| {
                    // `constraints: []` is what an absent list reads as.
                    let none = if *f == "constraints" { json!({ "maxItems": 0 }) } else { json!({ "type": "null" }) };
                    ((*f).to_string(), none)
                }).collect::<serde_json::Map<_, _>>(),
            },
        }),
        json!({
            "if": { "properties": { "kind": { "const": "tune" } }, "required": ["kind"] },
            "then": {
                "properties": {
                    "gates": { "type": "null" },
                    "space": { "properties": { "mode": { "not": { "const": "quick" } } } },
                },
            },
        }),
    ];
    if let Some(all) = schema.get_mut("allOf").and_then(Value::as_array_mut) {
        all.append(&mut kinds);
    } else {
        schema["allOf"] = Value::Array(kinds);
    }
    let Some(gate) = schema.pointer_mut("/definitions/Gate") else {
        return;
    };
    let mut rules = Vec::new();
    for (field, takes) in GATE_FIELDS {
        let allowed = match takes {
            Takes::Methods(ms) => method_in(ms),
            Takes::MethodsOrStoredPareto(ms) => json!({ "anyOf": [
                method_in(ms),
                { "allOf": [method_in(&[GateMethod::Pareto]), against_stored()] },
            ] }),
            Takes::AgainstStored => against_stored(),
        };
        rules.push(json!({ "if": { "not": allowed }, "then": absent(&[field]) }));
    }
    rules.push(json!({
        "if": { "not": method_in(AGAINST_STORED) },
        "then": { "properties": { "against": { "not": { "const": "stored" } } } },
    }));
    gate["allOf"] = Value::Array(rules);
    let mut against: Vec<Value> = AGAINST.iter().map(|a| json!(a)).collect();
    against.push(Value::Null);
    gate["properties"]["against"]["enum"] = Value::Array(against);
    gate["properties"]["per_dtype"]["propertyNames"] = json!({ "enum": PRECISION_NAMES });
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
