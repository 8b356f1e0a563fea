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
    /// A hint, e.g. `did you mean \`flash_attn_v3\`?`.
    pub help: Option<String>,
    /// Further independent errors of the same file, found in the same pass (at most
    /// [`MAX_ERRORS_PER_FILE`] in all, this one included).
    pub also: Vec<Diagnostic>,
    /// Errors found beyond those shown (`and N more`).
    pub more: usize,
}

/// The most errors one file reports in one pass; the rest are counted (`and N more`).
pub const MAX_ERRORS_PER_FILE: usize = 20;

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
            help: None,
            also: Vec::new(),
            more: 0,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
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
        if let Some(help) = &self.help {
            writeln!(f, "  = help: {help}")?;
        }
        for d in &self.also {
            writeln!(f)?;
            write!(f, "{d}")?;
        }
        if self.more > 0 {
            writeln!(f)?;
            writeln!(
                f,
                "error: and {} more error{} in {} ({} in all; fix these first)",
                self.more,
                if self.more == 1 { "" } else { "s" },
                self.file_display(),
                self.count()
            )?;
        } else if !self.also.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "error: {} errors in {}",
                self.count(),
                self.file_display()
            )?;
        }
        Ok(())
    }
}

impl Diagnostic {
    /// Every error of one file as one diagnostic: the first, with the others (up to
    /// [`MAX_ERRORS_PER_FILE`] in all) in `also` and the rest counted in `more`. `None` when
    /// there are none.
    pub fn combine(errors: Vec<Diagnostic>) -> Option<Diagnostic> {
        if errors.is_empty() {
            return None;
        }
        let total: usize = errors.iter().map(|d| 1 + d.also.len() + d.more).sum();
        let mut flat = Vec::new();
        for mut d in errors {
            let also = std::mem::take(&mut d.also);
            d.more = 0;
            flat.push(d);
            flat.extend(also);
        }
        // In the order of the file (errors without a line last), as a compiler lists them.
        flat.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
        let mut first = flat.remove(0);
        flat.truncate(MAX_ERRORS_PER_FILE - 1);
        first.more = total - 1 - flat.len();
        first.also = flat;
        Some(first)
    }

    /// The number of errors this diagnostic stands for.
    pub fn count(&self) -> usize {
        1 + self.also.len() + self.more
    }
}

/// Levenshtein distance between two short strings (characters).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The valid values nearest to `wrong` when it looks like a near miss of them: within an edit
/// distance of a third of its length (at least 1, at most 3), or differing only in case or in
/// `-`/`_`. Ties are all returned, in `valid`'s order.
pub fn nearest<'a, I, S>(wrong: &str, valid: I) -> Vec<String>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    let norm = |s: &str| s.to_lowercase().replace('-', "_");
    let limit = (wrong.chars().count() / 3).clamp(1, 3);
    let valid: Vec<&str> = valid.into_iter().map(AsRef::as_ref).collect();
    let mut best: Vec<String> = Vec::new();
    let mut best_d = usize::MAX;
    for &v in &valid {
        if v == wrong {
            continue;
        }
        let d = if norm(v) == norm(wrong) {
            0
        } else {
            edit_distance(&norm(wrong), &norm(v))
        };
        if d > limit {
            continue;
        }
        if d < best_d {
            best_d = d;
            best.clear();
        }
        if d == best_d && !best.iter().any(|b| b == v) {
            best.push(v.to_string());
        }
    }
    if best.is_empty() {
        // `paged_blocks` for `paged`: a valid value the wrong one starts with (or the reverse).
        let w = norm(wrong);
        for &v in &valid {
            let n = norm(v);
            if n.len() >= 3 && (w.starts_with(&n) || n.starts_with(&w)) && w.len() >= 3 {
                best.push(v.to_string());
            }
        }
    }
    best
}

/// `did you mean `x`?` (or `x` or `y`) for a near miss, else `None`.
pub fn did_you_mean<'a, I, S>(wrong: &str, valid: I) -> Option<String>
where
    I: IntoIterator<Item = &'a S>,
    S: AsRef<str> + ?Sized + 'a,
{
    let near = nearest(wrong, valid);
    if near.is_empty() {
        return None;
    }
    let quoted: Vec<String> = near.iter().map(|n| format!("`{n}`")).collect();
    Some(format!("did you mean {}?", quoted.join(" or ")))
}

impl std::error::Error for Diagnostic {}

/// Several diagnostics at once (a directory of specs reports every file; each file's
/// diagnostic carries that file's further errors in [`Diagnostic::also`]).
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
    fn near_misses_get_suggestions_and_far_ones_none() {
        let vals = [
            "flash_attn_v2",
            "flash_attn_v3",
            "paged_attention",
            "native",
        ];
        assert_eq!(
            did_you_mean("flash_atn_v3", &vals).as_deref(),
            Some("did you mean `flash_attn_v3`?")
        );
        assert_eq!(
            did_you_mean("flash_attn_v4", &vals).as_deref(),
            Some("did you mean `flash_attn_v2` or `flash_attn_v3`?")
        );
        assert_eq!(
            did_you_mean("Paged-Attention", &vals).as_deref(),
            Some("did you mean `paged_attention`?")
        );
        assert_eq!(did_you_mean("xformers", &vals), None);
        assert_eq!(
            did_you_mean("nat", &vals).as_deref(),
            Some("did you mean `native`?")
        );
        assert_eq!(did_you_mean("na", &vals), None);
        assert_eq!(
            did_you_mean("paged_blocks", &["contiguous", "paged", "chunked"]).as_deref(),
            Some("did you mean `paged`?")
        );
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn combined_errors_are_all_shown_up_to_the_limit() {
        let src = "a: 1\n";
        let errs: Vec<Diagnostic> = (0..25)
            .map(|i| Diagnostic::new("s.yaml", format!("problem {i}")).at(src, 1, None))
            .collect();
        let d = Diagnostic::combine(errs).unwrap_or_else(|| Diagnostic::new("s.yaml", "none"));
        assert_eq!(d.message, "problem 0");
        assert_eq!(d.also.len(), MAX_ERRORS_PER_FILE - 1);
        assert_eq!(d.more, 25 - MAX_ERRORS_PER_FILE);
        assert_eq!(d.count(), 25);
        let text = d.to_string();
        assert!(
            text.contains("problem 19") && !text.contains("problem 20"),
            "{text}"
        );
        assert!(
            text.contains("and 5 more errors in s.yaml (25 in all"),
            "{text}"
        );
        assert!(Diagnostic::combine(Vec::new()).is_none());
    }
}
