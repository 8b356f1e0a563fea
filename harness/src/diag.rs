//! Diagnostics for user mistakes in specs and catalogs: file, source line, field, what was
//! expected and the valid choices, rendered like a compiler error.

use std::fmt;
use std::path::{Path, PathBuf};

/// One user-facing error about an input file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file the user wrote.
    pub file: PathBuf,
    /// 1-based line in that file (the source line, not the rendered one), when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field path, e.g. `targets.engines[1]`.
    pub field: Option<String>,
    /// What is wrong, as a lowercase fragment.
    pub message: String,
    /// What was expected, e.g. `one of: sim, vllm, tgi`.
    pub expected: Option<String>,
    /// The source line's text, for the snippet.
    pub snippet: Option<String>,
}

impl Diagnostic {
    /// A diagnostic about `file` with no location yet.
    pub fn new(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
            expected: None,
            snippet: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    /// Expected one of `choices`.
    pub fn choices<I, S>(self, choices: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let list: Vec<String> = choices
            .into_iter()
            .map(|c| c.as_ref().to_string())
            .collect();
        self.expected(format!("one of: {}", list.join(", ")))
    }

    /// Attach a location in the source text (1-based line) and copy the line for the snippet.
    pub fn at(mut self, source: &str, line: usize, column: Option<usize>) -> Self {
        self.line = Some(line);
        self.column = column;
        self.snippet = source
            .lines()
            .nth(line.saturating_sub(1))
            .map(str::to_string);
        self
    }

    /// The file name as shown to the user.
    pub fn file_display(&self) -> String {
        display_path(&self.file)
    }
}

/// Show a path relative to the current directory when it is inside it.
pub fn display_path(path: &Path) -> String {
    if let Ok(cwd) = std::env::current_dir()
        && let Ok(rel) = path.strip_prefix(&cwd)
    {
        return rel.display().to_string();
    }
    path.display().to_string()
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        let file = self.file_display();
        match (self.line, self.column) {
            (Some(l), Some(c)) => writeln!(f, "  --> {file}:{l}:{c}")?,
            (Some(l), None) => writeln!(f, "  --> {file}:{l}")?,
            _ => writeln!(f, "  --> {file}")?,
        }
        if let (Some(line), Some(text)) = (self.line, &self.snippet) {
            let width = line.to_string().len();
            writeln!(f, "{:width$} |", "")?;
            writeln!(f, "{line} | {text}")?;
            if let Some(col) = self.column {
                writeln!(f, "{:width$} | {:>col$}", "", "^")?;
            } else {
                writeln!(f, "{:width$} |", "")?;
            }
        }
        if let Some(field) = &self.field {
            writeln!(f, "  = field: {field}")?;
        }
        if let Some(expected) = &self.expected {
            writeln!(f, "  = expected: {expected}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// Several diagnostics at once (one bad spec can have several problems; we stop at the first
/// per file, but a directory of specs reports every file).
#[derive(Clone, Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Find the 1-based line of the first `key:` at any indentation, searching from `from_line`.
pub fn find_key_line(text: &str, key: &str, from_line: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .skip(from_line.saturating_sub(1))
        .find_map(|(i, l)| {
            let t = l.trim_start().trim_start_matches("- ");
            let t = t.trim_start_matches('{').trim_start();
            (t.starts_with(key) && t[key.len()..].trim_start().starts_with(':')).then_some(i + 1)
        })
}

/// Find the 1-based line and column of the first occurrence of `token` as a whole word at or
/// after `from_line`.
pub fn find_token(text: &str, token: &str, from_line: usize) -> Option<(usize, usize)> {
    if token.is_empty() {
        return None;
    }
    for (i, l) in text.lines().enumerate().skip(from_line.saturating_sub(1)) {
        let code = l.split(" #").next().unwrap_or(l);
        let mut start = 0;
        while let Some(pos) = code[start..].find(token) {
            let at = start + pos;
            let before = code[..at].chars().next_back();
            let after = code[at + token.len()..].chars().next();
            let word = |c: Option<char>| {
                c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
            };
            if !word(before) && !word(after) {
                return Some((i + 1, at + 1));
            }
            start = at + token.len();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_snippet_and_choices() {
        let src = "kind: sweep\nname: x\ntargets:\n  engines: [vlm@1]\n";
        let d = Diagnostic::new("specs/x.yaml", "unknown engine `vlm`")
            .at(src, 4, Some(13))
            .field("targets.engines[0]")
            .choices(["sim", "vllm"]);
        let text = d.to_string();
        assert!(text.contains("specs/x.yaml:4:13"), "{text}");
        assert!(text.contains("engines: [vlm@1]"), "{text}");
        assert!(text.contains("field: targets.engines[0]"), "{text}");
        assert!(text.contains("one of: sim, vllm"), "{text}");
    }

    #[test]
    fn finds_keys_and_tokens() {
        let src = "a:\n  dims:\n    attn: [x, fa]\n";
        assert_eq!(find_key_line(src, "dims", 1), Some(2));
        assert_eq!(find_token(src, "fa", 1), Some((3, 15)));
        assert_eq!(find_token(src, "f", 1), None);
    }
}
