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

/// One step of a path into a YAML document: a mapping key or a sequence index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A 1-based line and column in a YAML text.
pub type Pos = (usize, usize);

/// One node of a parsed document: where its key (for a mapping entry) and its value start.
#[derive(Clone, Debug)]
struct Node {
    path: Vec<Step>,
    key: Option<Pos>,
    value: Pos,
    /// The value, when it is a scalar.
    scalar: Option<String>,
}

/// Where every node of a YAML document is, by path: the parsed document's spans, used to put a
/// diagnostic at the key or value it is about (never a search of the text).
#[derive(Clone, Debug, Default)]
pub struct Locations {
    nodes: Vec<Node>,
}

/// An open collection while walking the parser's events.
enum Frame {
    /// A mapping: the key just read (with its position) when a value is due.
    Map {
        path: Vec<Step>,
        key: Option<(String, Pos)>,
    },
    Seq {
        path: Vec<Step>,
        next: usize,
    },
}

impl Locations {
    /// Index `text` (YAML that already parsed). A text the parser rejects indexes as far as it
    /// got.
    pub fn of(text: &str) -> Self {
        use serde_saphyr::granit_parser::{Event, Parser, ScalarStyle};
        let mut nodes = Vec::new();
        let mut stack: Vec<Frame> = Vec::new();
        let pos = |m: &serde_saphyr::granit_parser::Marker| (m.line(), m.col() + 1);
        for ev in Parser::new_from_str(text) {
            let Ok((ev, span)) = ev else { break };
            let at = pos(&span.start);
            // A key of a mapping: remember it and wait for the value.
            if let (
                Event::Scalar(v, ..),
                Some(Frame::Map {
                    key: key @ None, ..
                }),
            ) = (&ev, stack.last_mut())
            {
                *key = Some((v.to_string(), at));
                continue;
            }
            let opens = matches!(ev, Event::MappingStart(..) | Event::SequenceStart(..));
            let is_value = opens || matches!(ev, Event::Scalar(..) | Event::Alias(..));
            if is_value {
                // The value's path and key position; the parent moves on to its next entry.
                let (path, key) = match stack.last_mut() {
                    Some(Frame::Map { path, key }) => {
                        let (k, kpos) = key.take().unwrap_or_default();
                        let mut p = path.clone();
                        p.push(Step::Key(k));
                        (p, Some(kpos))
                    }
                    Some(Frame::Seq { path, next }) => {
                        let mut p = path.clone();
                        p.push(Step::Index(*next));
                        *next += 1;
                        (p, None)
                    }
                    None => (Vec::new(), None),
                };
                // A quoted scalar is located at its first character, inside the quotes.
                let (scalar, value) = match &ev {
                    Event::Scalar(v, style, ..) => {
                        let quoted =
                            matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted);
                        (Some(v.to_string()), (at.0, at.1 + usize::from(quoted)))
                    }
                    _ => (None, at),
                };
                nodes.push(Node {
                    path: path.clone(),
                    key,
                    value,
                    scalar,
                });
                match ev {
                    Event::MappingStart(..) => stack.push(Frame::Map { path, key: None }),
                    Event::SequenceStart(..) => stack.push(Frame::Seq { path, next: 0 }),
                    _ => {}
                }
            } else if matches!(ev, Event::MappingEnd | Event::SequenceEnd) {
                stack.pop();
            }
        }
        Self { nodes }
    }

    fn node(&self, path: &[Step]) -> Option<&Node> {
        self.nodes.iter().find(|n| n.path == path)
    }

    /// Where the entry at `path` is written: its key, or the item itself in a sequence.
    pub fn key(&self, path: &[Step]) -> Option<Pos> {
        self.node(path).map(|n| n.key.unwrap_or(n.value))
    }

    /// Where the entry at `path` is written, else its nearest written parent (never the
    /// document itself).
    pub fn nearest(&self, path: &[Step]) -> Option<Pos> {
        (1..=path.len()).rev().find_map(|n| self.key(&path[..n]))
    }

    /// Where the value at `path` starts.
    pub fn value(&self, path: &[Step]) -> Option<Pos> {
        self.node(path).map(|n| n.value)
    }

    /// The first scalar `text` at or under `path` (a value of a list, or of a key).
    pub fn scalar_under(&self, path: &[Step], text: &str) -> Option<Pos> {
        self.nodes
            .iter()
            .find(|n| n.path.starts_with(path) && n.scalar.as_deref() == Some(text))
            .map(|n| n.value)
    }
}

impl From<&str> for Step {
    fn from(s: &str) -> Self {
        Self::Key(s.to_string())
    }
}

impl From<&String> for Step {
    fn from(s: &String) -> Self {
        Self::Key(s.clone())
    }
}

impl From<usize> for Step {
    fn from(i: usize) -> Self {
        Self::Index(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(steps: &[&str]) -> Vec<Step> {
        steps
            .iter()
            .map(|s| match s.parse::<usize>() {
                Ok(i) => Step::Index(i),
                Err(_) => Step::from(*s),
            })
            .collect()
    }

    #[test]
    fn keys_and_values_are_located_in_block_and_flow_style() {
        let text = "a:\n  b: [x, 'y']\n  c:\n    - { d: 1, e: [z] }\n# d: 2\nf: x\n";
        let loc = Locations::of(text);
        assert_eq!(loc.key(&at(&["a"])), Some((1, 1)));
        assert_eq!(loc.key(&at(&["a", "b"])), Some((2, 3)));
        assert_eq!(loc.value(&at(&["a", "b"])), Some((2, 6)));
        // A list item's "key" is the item; a quoted scalar starts inside its quotes.
        assert_eq!(loc.key(&at(&["a", "b", "1"])), Some((2, 11)));
        assert_eq!(loc.key(&at(&["a", "c", "0", "d"])), Some((4, 9)));
        assert_eq!(loc.key(&at(&["a", "c", "0", "e", "0"])), Some((4, 19)));
        // Comments are not nodes; a later `x` outside `a` is not under `a`.
        assert_eq!(loc.key(&at(&["d"])), None);
        assert_eq!(loc.scalar_under(&at(&["a"]), "x"), Some((2, 7)));
        assert_eq!(loc.scalar_under(&at(&["f"]), "x"), Some((6, 4)));
        assert_eq!(loc.scalar_under(&at(&["a"]), "w"), None);
    }

    #[test]
    fn a_text_that_does_not_parse_indexes_what_came_before() {
        let loc = Locations::of("a: 1\nb: [\n");
        assert_eq!(loc.key(&at(&["a"])), Some((1, 1)));
    }
}
