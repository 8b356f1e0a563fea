//! Parsing YAML into typed structs with errors that name the file and the source line.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::diag::Diagnostic;
use crate::render::Rendered;

/// Parse `text` (the YAML the user wrote, or the rendered form of it) into `T`.
///
/// When `rendered` is given, `text` is its rendered text and error lines are mapped back to the
/// template source `source`.
pub fn parse<T: DeserializeOwned>(
    file: &Path,
    source: &str,
    rendered: Option<&Rendered>,
) -> Result<T, Diagnostic> {
    let text = rendered.map(|r| r.text.as_str()).unwrap_or(source);
    serde_saphyr::from_str::<T>(text).map_err(|err| {
        let inner = err.without_snippet();
        let message = clean_message(&inner.to_string());
        // `unknown field `x`, expected one of a, b`: the choices go to `expected`, and a near
        // miss gets a suggestion.
        let (head, choices) = match message.split_once(", expected one of ") {
            Some((head, rest)) => (
                head.to_string(),
                Some(rest.trim_end_matches('.').to_string()),
            ),
            None => (message.clone(), None),
        };
        let mut d = Diagnostic::new(file, head.clone());
        if let Some(loc) = err.location() {
            let rline = loc.line() as usize;
            if rline > 0 {
                let line = rendered.map(|r| r.source_line(rline)).unwrap_or(rline);
                // Columns are only meaningful when the source line was copied verbatim.
                let same = text.lines().nth(rline - 1) == source.lines().nth(line - 1);
                let col = (same && loc.column() > 0).then_some(loc.column() as usize);
                d = d.at(source, line, col);
            }
        }
        if let Some(rest) = choices {
            let valid: Vec<&str> = rest.split(", ").map(|c| c.trim_matches('`')).collect();
            d = d.choices(&valid);
            if let Some(wrong) = head.split('`').nth(1) {
                d.help = crate::diag::did_you_mean(wrong, &valid);
            }
        }
        d
    })
}

/// serde-saphyr prefixes `line L column C:`; we print the location ourselves.
fn clean_message(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg).trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let first = match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, after)) => after,
        None => first,
    };
    // ... and sometimes appends ` at line L, column C`.
    match first.rsplit_once(" at line ") {
        Some((head, tail))
            if tail.split_once(", column ").is_some_and(|(l, c)| {
                l.chars().all(|x| x.is_ascii_digit()) && c.chars().all(|x| x.is_ascii_digit())
            }) =>
        {
            head.to_string()
        }
        _ => first.to_string(),
    }
}
