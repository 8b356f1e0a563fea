//! JSONL prompt files: the prompts of a workload's dataset and of a fidelity probe set.

use serde::{Deserialize, Serialize};

/// A JSONL prompt file: one JSON object per line with a string `prompt` and optionally
/// `output_tokens` (a positive integer; else the workload's `output_tokens` distribution is
/// sampled). Other fields are ignored, so ShareGPT-style exports with extra keys load as they
/// are. Each request draws a line at random from the launch seed, so a rep's prompts are
/// reproducible. The workload's `input_tokens` stays the bound engines size their context by.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// The file, relative to the directory that holds `catalogs/` (or absolute).
    pub path: String,
    /// The parsed lines (filled by the harness when it loads the workloads).
    #[serde(skip)]
    pub entries: Vec<DatasetEntry>,
}

/// One line of a [`Dataset`].
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct DatasetEntry {
    pub prompt: String,
    #[serde(default)]
    pub output_tokens: Option<u32>,
}

impl Dataset {
    /// Parse JSONL text; errors carry the 1-based line number and the field.
    pub fn parse(text: &str) -> Result<Vec<DatasetEntry>, (usize, String)> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| (line_no, format!("not a JSON object: {e}")))?;
            let obj = v
                .as_object()
                .ok_or_else(|| (line_no, format!("expected a JSON object, found {v}")))?;
            let prompt = match obj.get("prompt") {
                Some(serde_json::Value::String(p)) if !p.trim().is_empty() => p.clone(),
                Some(serde_json::Value::String(_)) => {
                    return Err((
                        line_no,
                        "field `prompt`: expected a non-empty string".into(),
                    ));
                }
                Some(other) => {
                    return Err((
                        line_no,
                        format!("field `prompt`: expected a string, found {other}"),
                    ));
                }
                None => return Err((line_no, "field `prompt`: missing".into())),
            };
            let output_tokens = match obj.get("output_tokens") {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => match v.as_u64() {
                    Some(n) if n >= 1 && n <= u64::from(u32::MAX) => Some(n as u32),
                    _ => {
                        return Err((
                            line_no,
                            format!(
                                "field `output_tokens`: expected a positive integer, found {v}"
                            ),
                        ));
                    }
                },
            };
            out.push(DatasetEntry {
                prompt,
                output_tokens,
            });
        }
        if out.is_empty() {
            return Err((1, "the dataset has no prompts".into()));
        }
        Ok(out)
    }
}
