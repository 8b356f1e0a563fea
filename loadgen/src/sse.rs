//! An incremental parser for server-sent events (the `text/event-stream` framing of streaming
//! completions): bytes in, the `data` payload of each complete event out.
//!
//! Events end at a blank line; several `data:` lines of one event are joined with `\n`; comment
//! lines (`:`), `event:`, `id:` and `retry:` fields are ignored; `\r\n` and `\n` both end lines.

/// Feeds bytes as they arrive and yields complete events' data.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    data: Option<String>,
}

/// A stream that is not valid SSE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed event stream: {0}")]
pub struct SseError(pub String);

impl SseParser {
    /// Add `bytes`; returns the data of every event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, SseError> {
        let mut out = Vec::new();
        for &b in bytes {
            if b != b'\n' {
                self.line.push(b);
                continue;
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut out)?;
        }
        Ok(out)
    }

    /// The end of the stream: a final event without its blank line still counts.
    pub fn finish(&mut self) -> Result<Option<String>, SseError> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, &mut out)?;
        }
        Ok(out.pop().or_else(|| self.data.take()))
    }

    fn line_done(&mut self, line: &[u8], out: &mut Vec<String>) -> Result<(), SseError> {
        if line.is_empty() {
            if let Some(d) = self.data.take() {
                out.push(d);
            }
            return Ok(());
        }
        let text = std::str::from_utf8(line)
            .map_err(|_| SseError(format!("line is not UTF-8: {:?}", lossy(line))))?;
        if text.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" | "id" | "retry" => {}
            _ => {
                return Err(SseError(format!(
                    "unexpected line {:?} (expected `data: ...`)",
                    lossy(line)
                )));
            }
        }
        Ok(())
    }
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    s.chars().take(120).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_line_endings() {
        let mut p = SseParser::default();
        assert!(p.push(b"data: {\"a\"").unwrap().is_empty());
        assert_eq!(p.push(b":1}\r\n\r\nda").unwrap(), vec!["{\"a\":1}"]);
        assert_eq!(
            p.push(b"ta: x\ndata: y\n\n: comment\n\ndata: [DONE]\n\n")
                .unwrap(),
            vec!["x\ny", "[DONE]"]
        );
        assert_eq!(p.push(b"data: tail").unwrap(), Vec::<String>::new());
        assert_eq!(p.finish().unwrap().as_deref(), Some("tail"));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut p = SseParser::default();
        assert!(p.push(b"<html>oops</html>\n").is_err());
        let mut p = SseParser::default();
        assert!(p.push(&[0xff, 0xfe, b'\n']).is_err());
    }
}
