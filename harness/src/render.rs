//! Rendering a spec file: minijinja with strict undefined behaviour, then a map from rendered
//! lines back to the lines the user wrote, so YAML errors point into the source file.
//!
//! Auto-escaping is off (spec templates are YAML, and minijinja would JSON-escape names ending in
//! `.yaml`); use `{{ value | tojson }}` to emit a quoted scalar or a flow list safely.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior, Value};
use similar::{DiffOp, TextDiff};

use crate::diag::Diagnostic;

/// What a spec template sees.
#[derive(Clone, Debug, Default)]
pub struct RenderContext {
    /// The detected hardware (`Detected::context`): `gpus` (device names), `profiles` (hardware
    /// profiles present), `has_gpu`, `cpu_model`, `cpu_cores`.
    pub hardware: BTreeMap<String, Value>,
    /// Catalog dimensions and their values.
    pub catalog: BTreeMap<String, Vec<String>>,
    /// `L1_*` environment variables.
    pub env: BTreeMap<String, String>,
}

impl RenderContext {
    /// The `L1_*` variables of this process.
    pub fn env_from_process() -> BTreeMap<String, String> {
        std::env::vars()
            .filter(|(k, _)| k.starts_with("L1_"))
            .collect()
    }
}

/// A rendered spec and the map back to source lines.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub text: String,
    /// `line_map[i]` is the 1-based source line of rendered line `i + 1`.
    line_map: Vec<usize>,
}

impl Rendered {
    /// The source line (1-based) that produced rendered line `line` (1-based).
    pub fn source_line(&self, line: usize) -> usize {
        self.line_map
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(line)
    }
}

/// `product({'a': [1, 2], 'b': [x]})` -> `[{'a': 1, 'b': x}, {'a': 2, 'b': x}]`.
fn product(matrix: Value) -> Result<Value, Error> {
    let mut rows: Vec<Vec<(Value, Value)>> = vec![vec![]];
    for key in matrix.try_iter()? {
        let axis = matrix.get_item(&key)?;
        if axis.len().unwrap_or(0) == 0 {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("product: axis `{key}` is empty"),
            ));
        }
        let mut next = Vec::new();
        for prefix in &rows {
            for v in axis.try_iter()? {
                let mut row = prefix.clone();
                row.push((key.clone(), v));
                next.push(row);
            }
        }
        rows = next;
    }
    Ok(Value::from(
        rows.into_iter().map(Value::from_pairs).collect::<Vec<_>>(),
    ))
}

/// Render `source` (the text of `file`) with `ctx`.
pub fn render(file: &Path, source: &str, ctx: &RenderContext) -> Result<Rendered, Diagnostic> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "spec".into());
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
        .map_err(|e| {
            Diagnostic::new(
                file,
                format!("failed to configure the template syntax: {e}"),
            )
        })?;
    env.set_syntax(syntax);
    env.set_fuel(Some(FUEL));
    env.add_function("product", product);
    env.set_recursion_limit(64);
    let tmpl = env
        .template_from_named_str(&name, source)
        .map_err(|e| template_error(file, source, &e))?;
    let context = minijinja::context! {
        hardware => Value::from(ctx.hardware.clone()),
        catalog => Value::from(ctx.catalog.clone()),
        env => Value::from(ctx.env.clone()),
    };
    // Rendered into a bounded buffer: a runaway template (a string doubled in a loop) stops at
    // the limit with its reason instead of filling memory.
    let mut out = Bounded::default();
    if let Err(e) = tmpl.render_captured_to(context, &mut out) {
        let mut d = template_error(file, source, &e);
        if out.full && d.line.is_none() {
            // minijinja drops the location of a failed write: the line being written is the
            // last line of what was rendered so far, mapped back to the source.
            let partial = String::from_utf8_lossy(&out.buf);
            let rendered_line = partial.matches('\n').count() + 1;
            let map = line_map(source, &partial);
            let line = map
                .get(rendered_line - 1)
                .or(map.last())
                .copied()
                .unwrap_or(1);
            d = d.at(source, line, None);
        }
        return Err(d);
    }
    let text = String::from_utf8(out.buf)
        .map_err(|e| Diagnostic::new(file, format!("the rendered spec is not UTF-8: {e}")))?;
    let line_map = line_map(source, &text);
    Ok(Rendered { text, line_map })
}

/// Template instructions one render may execute: real specs use a few thousand; a loop nest
/// that would run for minutes stops here.
pub const FUEL: u64 = 5_000_000;

/// The largest rendered spec: real specs are a few KiB; more is a runaway template.
pub const MAX_RENDERED_BYTES: usize = 1 << 20;

/// A writer that refuses to grow past [`MAX_RENDERED_BYTES`].
#[derive(Default)]
struct Bounded {
    buf: Vec<u8>,
    /// A write was refused.
    full: bool,
}

impl std::io::Write for Bounded {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > MAX_RENDERED_BYTES {
            self.full = true;
            return Err(std::io::Error::other(TOO_LARGE));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TOO_LARGE: &str = "rendered spec is too large";

fn template_error(file: &Path, source: &str, err: &Error) -> Diagnostic {
    // The error's own reason: minijinja's kind, its detail, and for a failed write the I/O
    // error behind it (our size limit).
    let cause = std::error::Error::source(err).map(ToString::to_string);
    let mut message = match err.kind() {
        ErrorKind::UndefinedError => "template uses an undefined value".to_string(),
        ErrorKind::SyntaxError => "template syntax error".to_string(),
        ErrorKind::OutOfFuel => format!(
            "template ran out of fuel: it ran too long (limit {FUEL} instructions; a loop nest too deep or too long?)"
        ),
        ErrorKind::WriteFailure if cause.as_deref().is_some_and(|c| c.contains(TOO_LARGE)) => {
            format!(
                "template error: the {TOO_LARGE} (limit {} MiB; a string or loop that grows without end?)",
                MAX_RENDERED_BYTES >> 20
            )
        }
        kind => format!("template error ({kind})"),
    };
    let too_large = cause.as_deref().is_some_and(|c| c.contains(TOO_LARGE));
    if too_large {
        // minijinja's detail ("I/O error during rendering") adds nothing to ours.
    } else if let Some(detail) = err.detail() {
        message = format!("{message}: {detail}");
    } else if let Some(cause) = cause {
        message = format!("{message}: {cause}");
    }
    let mut d = Diagnostic::new(file, message);
    if let Some(line) = err.line() {
        let column = err.range().map(|r| {
            let start_of_line: usize = source.lines().take(line - 1).map(|l| l.len() + 1).sum();
            r.start.saturating_sub(start_of_line) + 1
        });
        d = d.at(source, line, column);
    }
    if err.kind() == ErrorKind::UndefinedError {
        d = d.expected("a defined variable: hardware.*, catalog.*, env.L1_* (test with `is defined`), or product(...)");
    }
    d
}

/// Align rendered lines with source lines (a line diff): copied lines map exactly, lines made by
/// an expression map to the source line they replace, lines made by a loop to the loop body.
fn line_map(source: &str, rendered: &str) -> Vec<usize> {
    let diff = TextDiff::from_lines(source, rendered);
    let source_lines: Vec<&str> = source.lines().collect();
    let rendered_lines: Vec<&str> = rendered.lines().collect();
    let mut map = Vec::new();
    for op in diff.ops() {
        match *op {
            DiffOp::Equal {
                old_index,
                new_index,
                len,
            } => {
                resize(&mut map, new_index);
                map.extend((0..len).map(|i| old_index + i + 1));
            }
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => {
                // Each rendered line maps to the replaced source line it shares the longest
                // prefix with (`c: 3` comes from `c: {{ 1 + 2 }}`, not from `{% endif %}`).
                resize(&mut map, new_index);
                for i in 0..new_len {
                    let new_line = rendered_lines.get(new_index + i).copied().unwrap_or("");
                    let fallback = old_index + i.min(old_len.saturating_sub(1));
                    let best = (old_index..old_index + old_len)
                        .map(|o| {
                            (
                                common_prefix(source_lines.get(o).copied().unwrap_or(""), new_line),
                                o,
                            )
                        })
                        .filter(|(n, _)| *n > 0)
                        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
                        .map(|(_, o)| o)
                        .unwrap_or(fallback);
                    map.push(best + 1);
                }
            }
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => {
                resize(&mut map, new_index);
                // Lines produced with no source counterpart come from the template line before.
                map.extend((0..new_len).map(|_| old_index.max(1)));
            }
            DiffOp::Delete { .. } => {}
        }
    }
    map
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.trim_start()
        .chars()
        .zip(b.trim_start().chars())
        .take_while(|(x, y)| x == y)
        .count()
}

fn resize(map: &mut Vec<usize>, len: usize) {
    while map.len() < len {
        let last = map.last().copied().unwrap_or(1);
        map.push(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> RenderContext {
        let mut c = RenderContext::default();
        c.env.insert("L1_NIGHTLY".into(), "1".into());
        c
    }

    #[test]
    fn renders_and_maps_lines_through_blocks() {
        let src =
            "a: 1\n{% if env.L1_NIGHTLY is defined %}\nb: 2\n{% endif %}\nc: {{ 1 + 2 }}\nd: x\n";
        let r = render(Path::new("s.yaml"), src, &ctx()).unwrap();
        assert_eq!(r.text, "a: 1\nb: 2\nc: 3\nd: x\n");
        assert_eq!(r.source_line(1), 1);
        assert_eq!(r.source_line(2), 3);
        assert_eq!(r.source_line(3), 5);
        assert_eq!(r.source_line(4), 6);
    }

    #[test]
    fn strict_undefined_is_an_error_with_source_line() {
        let src = "a: 1\nb: {{ nope }}\n";
        let e = render(Path::new("s.yaml"), src, &ctx()).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("undefined"), "{e}");
    }

    #[test]
    fn missing_env_is_undefined_not_empty() {
        let src = "a: {{ env.L1_MISSING }}\n";
        assert!(render(Path::new("s.yaml"), src, &ctx()).is_err());
    }

    #[test]
    fn yaml_names_are_not_json_escaped() {
        let src = "name: \"{{ 'x' }}-bs\"\n";
        let r = render(Path::new("s.yaml"), src, &ctx()).unwrap();
        assert_eq!(r.text, "name: \"x-bs\"\n");
    }

    #[test]
    fn exhausted_fuel_says_so_and_where() {
        let src = "kind: sweep\nname: x\n{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}\n";
        let e = render(Path::new("s.yaml"), src, &ctx()).unwrap_err();
        assert!(e.message.contains("out of fuel"), "{e}");
        assert!(e.message.contains("limit"), "{e}");
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn runaway_output_is_stopped_with_its_reason() {
        // Each `s ~ s` doubles the string at the cost of a few instructions of fuel: only a
        // limit on what is written stops it.
        let src = "kind: sweep\n{% set ns = namespace(s='x') %}{% for i in range(24) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}\nname: {{ ns.s }}\n";
        let e = render(Path::new("s.yaml"), src, &ctx()).unwrap_err();
        assert!(e.message.contains("rendered spec is too large"), "{e}");
        assert!(e.message.contains("limit"), "{e}");
        assert_eq!(e.line, Some(3), "{e}");
        // Output that grows in a loop stops at the same limit.
        let src = "kind: sweep\n{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}\n";
        let e = render(Path::new("s.yaml"), src, &ctx()).unwrap_err();
        assert!(e.message.contains("rendered spec is too large"), "{e}");
    }

    #[test]
    fn other_template_errors_keep_their_kind_and_detail() {
        let src = "a: 1\nb: {{ 'x' * 200000000 }}\n";
        let e = render(Path::new("s.yaml"), src, &ctx()).unwrap_err();
        assert!(e.message.contains("repeated string is too large"), "{e}");
        assert_eq!(e.line, Some(2), "{e}");
        let src = "a: {{ nope_fn() }}\n";
        let e = render(Path::new("s.yaml"), src, &ctx()).unwrap_err();
        assert!(e.message.contains("unknown function"), "{e}");
    }

    #[test]
    fn product_expands_matrix() {
        let src =
            "{% for r in product({'a': [1, 2], 'b': ['x']}) %}{{ r.a }}{{ r.b }} {% endfor %}\n";
        let r = render(Path::new("s.yaml"), src, &ctx()).unwrap();
        assert_eq!(r.text, "1x 2x ");
    }
}
