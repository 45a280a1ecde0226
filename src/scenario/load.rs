//! Reading scenario files: `include("...")` expansion, and mapping any position in the
//! expanded text back to the file, line and column the author wrote.
//!
//! RON has no include mechanism, so the loader splices included files into one text before
//! parsing and keeps a [`SourceMap`] of where every byte came from. Parse errors and
//! validation errors alike are reported against the original file, line and column.

use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Location, ScenarioError};

use crate::limits::{MAX_EXPANDED_BYTES, MAX_INCLUDE_DEPTH};

/// Most `include(...)` calls expanded for one scenario (an include of an empty file adds no
/// text, so the size cap alone would not stop a fan-out of them).
const MAX_INCLUDES: usize = 10_000;

/// Most bytes read for one scenario, each file counted every time it is included.
const MAX_READ_BYTES: usize = 4 * MAX_EXPANDED_BYTES;

/// One file read from disk.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as it should be shown to the user.
    pub path: PathBuf,
    /// Its full text.
    pub text: String,
}

/// A run of the expanded text that came from one place in one file.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: usize,
    end: usize,
    file: usize,
    file_start: usize,
}

/// The expanded scenario text and where each part of it came from.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    /// Every file read, the root first.
    pub files: Vec<SourceFile>,
    /// The expanded text handed to the RON parser.
    pub text: String,
    segments: Vec<Segment>,
    /// Includes expanded so far.
    includes: usize,
    /// Bytes read so far, every file counted each time it is read.
    read: usize,
}

impl SourceMap {
    /// Reads `path` and expands its includes.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let mut map = SourceMap::default();
        let mut text = String::new();
        match map.expand(path, None, &mut Vec::new(), &mut text) {
            Ok(()) => {
                map.text = text;
                Ok(map)
            }
            Err(d) => Err(ScenarioError::resolve(&map, vec![d], path)),
        }
    }

    /// Builds a map for text that did not come from disk (tests, stdin).
    pub fn from_text(name: &str, text: &str) -> Result<Self, ScenarioError> {
        Self::from_bytes(name, text.as_bytes().to_vec())
    }

    /// Builds a map for bytes that did not come from disk, checked as a file's are (UTF-8,
    /// no byte-order mark, the size caps). Includes are read relative to the working folder.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, ScenarioError> {
        Self::from_bytes_in(name, bytes, Path::new("."))
    }

    /// [`SourceMap::from_bytes`], its includes read relative to `dir`.
    pub fn from_bytes_in(name: &str, bytes: Vec<u8>, dir: &Path) -> Result<Self, ScenarioError> {
        let mut map = SourceMap::default();
        let mut out = String::new();
        let too_big = bytes.len() > MAX_EXPANDED_BYTES;
        let (text, problem) = decode(bytes);
        map.files.push(SourceFile {
            path: PathBuf::from(name),
            text,
        });
        if too_big {
            let d = too_large(None, &format!("`{name}` is larger"));
            return Err(ScenarioError::resolve(&map, vec![d], Path::new(name)));
        }
        if let Some((offset, message, hint)) = problem {
            let d = Diagnostic::new(message, Some(map.file_location(0, offset))).with_hint(hint);
            return Err(ScenarioError::resolve(&map, vec![d], Path::new(name)));
        }
        match map.splice(0, dir, &mut vec![PathBuf::from(name)], &mut out) {
            Ok(()) => {
                map.text = out;
                Ok(map)
            }
            Err(d) => Err(ScenarioError::resolve(&map, vec![d], Path::new(name))),
        }
    }

    fn expand(
        &mut self,
        path: &Path,
        from: Option<Location>,
        stack: &mut Vec<PathBuf>,
        out: &mut String,
    ) -> Result<(), Diagnostic> {
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if stack.contains(&canonical) {
            return Err(Diagnostic::new(
                format!("include cycle: `{}` includes itself", path.display()),
                from,
            )
            .with_hint("remove one of the include(...) lines that form the cycle"));
        }
        if stack.len() >= MAX_INCLUDE_DEPTH {
            return Err(Diagnostic::new("includes nested too deeply", from)
                .with_hint(format!("at most {MAX_INCLUDE_DEPTH} levels are supported")));
        }
        let what = if from.is_some() {
            "cannot read included file"
        } else {
            "cannot read scenario file"
        };
        let read_err = |e: std::io::Error| {
            Diagnostic::new(format!("{what} `{}`: {e}", path.display()), from)
                .with_hint("include paths are relative to the file that contains the include(...)")
        };
        if from.is_some() {
            self.includes += 1;
            if self.includes > MAX_INCLUDES {
                return Err(too_large(
                    from,
                    &format!("more than {MAX_INCLUDES} includes"),
                ));
            }
        }
        // Only regular files: a device or a pipe (`/dev/zero`, a FIFO) could block or never
        // end.
        if !std::fs::metadata(path).map_err(read_err)?.is_file() {
            return Err(read_err(std::io::Error::other("not a regular file")));
        }
        // Never read more than the cap allows, whatever the file's size.
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(
                std::fs::File::open(path).map_err(read_err)?,
                MAX_EXPANDED_BYTES as u64 + 1,
            ),
            &mut bytes,
        )
        .map_err(read_err)?;
        if bytes.len() > MAX_EXPANDED_BYTES {
            return Err(too_large(from, &format!("`{}` is larger", path.display())));
        }
        // Text an include call skips (inside its own parentheses) adds nothing to the
        // expansion but is read and scanned all the same: every read counts here.
        self.read += bytes.len();
        if self.read > MAX_READ_BYTES {
            return Err(too_large_than(
                from,
                "the files read, each counted every time it is included, come to more",
                MAX_READ_BYTES,
            ));
        }
        let file = self.files.len();
        let (text, problem) = decode(bytes);
        self.files.push(SourceFile {
            path: path.to_path_buf(),
            text,
        });
        if let Some((offset, message, hint)) = problem {
            return Err(
                Diagnostic::new(message, Some(self.file_location(file, offset))).with_hint(hint),
            );
        }
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        stack.push(canonical);
        self.splice(file, &dir, stack, out)?;
        stack.pop();
        Ok(())
    }

    /// Copies file `file` into `out`, replacing each `include("x")` with x's expansion.
    fn splice(
        &mut self,
        file: usize,
        dir: &Path,
        stack: &mut Vec<PathBuf>,
        out: &mut String,
    ) -> Result<(), Diagnostic> {
        let text = self.files[file].text.clone();
        let mut copied = 0;
        for inc in find_includes(&text) {
            self.push_segment(file, copied, &text[copied..inc.start], out)?;
            let at = self.file_location(file, inc.start);
            self.expand(&dir.join(&inc.path), Some(at), stack, out)?;
            copied = inc.end;
        }
        self.push_segment(file, copied, &text[copied..], out)
    }

    fn push_segment(
        &mut self,
        file: usize,
        file_start: usize,
        piece: &str,
        out: &mut String,
    ) -> Result<(), Diagnostic> {
        if piece.is_empty() {
            return Ok(());
        }
        if out.len() + piece.len() > MAX_EXPANDED_BYTES {
            let at = self.file_location(file, file_start);
            return Err(too_large(
                Some(at),
                "the text with its includes spliced in is larger",
            ));
        }
        self.segments.push(Segment {
            start: out.len(),
            end: out.len() + piece.len(),
            file,
            file_start,
        });
        out.push_str(piece);
        Ok(())
    }

    /// The location of byte `offset` of the expanded text.
    pub fn locate(&self, offset: usize) -> Location {
        // Segments are in text order: a binary search keeps a located error cheap however
        // many includes were spliced.
        let i = self.segments.partition_point(|s| s.end <= offset);
        let seg = self.segments.get(i).or_else(|| self.segments.last());
        match seg {
            Some(s) => {
                let within = offset.saturating_sub(s.start).min(s.end - s.start);
                self.file_location(s.file, s.file_start + within)
            }
            None => Location {
                file: 0,
                line: 1,
                col: 1,
            },
        }
    }

    /// The location of a RON (line, column) position in the expanded text.
    pub fn locate_line_col(&self, line: usize, col: usize) -> Location {
        self.locate(self.offset_of(line, col))
    }

    /// The byte offset in the expanded text of a RON (line, column) position.
    pub fn offset_of(&self, line: usize, col: usize) -> usize {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i + 1 == line {
                let byte_col: usize = l
                    .chars()
                    .take(col.saturating_sub(1))
                    .map(char::len_utf8)
                    .sum();
                return offset + byte_col;
            }
            offset += l.len();
        }
        self.text.len().saturating_sub(1)
    }

    fn file_location(&self, file: usize, offset: usize) -> Location {
        let text = &self.files[file].text;
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = text[line_start..offset].chars().count() + 1;
        Location { file, line, col }
    }

    /// The path of file `file`.
    pub fn path(&self, file: usize) -> &Path {
        &self.files[file].path
    }

    /// The text of line `line` (1-based) of file `file`.
    pub fn line_text(&self, file: usize, line: usize) -> &str {
        self.files[file]
            .text
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or("")
    }
}

/// The error for a scenario past the size caps.
fn too_large(at: Option<Location>, what: &str) -> Diagnostic {
    too_large_than(at, what, MAX_EXPANDED_BYTES)
}

/// The error for a scenario past a size cap of `limit` bytes.
fn too_large_than(at: Option<Location>, what: &str, limit: usize) -> Diagnostic {
    Diagnostic::new(
        format!(
            "the scenario is too large: {what} than the {} MiB Bazaar reads",
            limit >> 20
        ),
        at,
    )
    .with_hint("an include is probably repeated or nested many times; include each piece once")
}

/// A file's bytes as text, and the first problem with them: the offset (in the returned
/// text) of invalid UTF-8 or a byte-order mark, a message and a hint. Invalid bytes become
/// U+FFFD in the text, so the offending line can still be shown.
fn decode(bytes: Vec<u8>) -> (String, Option<(usize, String, &'static str)>) {
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        return (
            text,
            Some((
                0,
                "the file starts with a byte-order mark (BOM)".to_owned(),
                "save the file as UTF-8 without a BOM (most editors offer \"UTF-8\" beside \"UTF-8 with BOM\")",
            )),
        );
    }
    match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let bad = e.as_bytes()[at];
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            (
                text,
                Some((
                    at,
                    format!("the file is not valid UTF-8 (byte 0x{bad:02X} here)"),
                    "save the file as UTF-8; a file saved as Latin-1 or UTF-16 shows this",
                )),
            )
        }
    }
}

/// One `include("path")` in a file: its byte range and the path.
struct Include {
    start: usize,
    end: usize,
    path: String,
}

/// Finds `include("...")` calls outside strings and comments.
fn find_includes(text: &str) -> Vec<Include> {
    let mut found = Vec::new();
    for tok in Tokens::new(text) {
        if let Tok::Ident(start, "include") = tok {
            let rest = &text[start + "include".len()..];
            let trimmed = rest.trim_start();
            let Some(after_paren) = trimmed.strip_prefix('(') else {
                continue;
            };
            let inner = after_paren.trim_start();
            let Some(after_quote) = inner.strip_prefix('"') else {
                continue;
            };
            let Some(close) = after_quote.find('"') else {
                continue;
            };
            let path = &after_quote[..close];
            let tail = after_quote[close + 1..].trim_start();
            if let Some(after) = tail.strip_prefix(')') {
                let end = text.len() - after.len();
                found.push(Include {
                    start,
                    end,
                    path: path.to_owned(),
                });
            }
        }
    }
    found
}

/// A RON token with its byte offset, enough to navigate structure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tok<'a> {
    /// An identifier.
    Ident(usize, &'a str),
    /// A string, number or char literal.
    Literal(usize),
    /// One of `( ) [ ] { } , :`.
    Punct(usize, u8),
}

impl Tok<'_> {
    pub(crate) fn offset(&self) -> usize {
        match *self {
            Tok::Ident(o, _) | Tok::Literal(o) | Tok::Punct(o, _) => o,
        }
    }
}

/// A small RON tokenizer that skips comments and string contents.
pub(crate) struct Tokens<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    /// The offset just past the last token returned.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Tok<'a>;

    fn next(&mut self) -> Option<Tok<'a>> {
        let bytes = self.text.as_bytes();
        loop {
            let start = self.pos;
            let &c = bytes.get(start)?;
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'/' if bytes.get(start + 1) == Some(&b'/') => {
                    self.pos = self.text[start..]
                        .find('\n')
                        .map_or(bytes.len(), |i| start + i);
                }
                b'/' if bytes.get(start + 1) == Some(&b'*') => {
                    let mut depth = 0usize;
                    let mut i = start;
                    // An unclosed comment runs to the end of the text (not to its last
                    // byte, which may be inside a character).
                    let mut end = bytes.len();
                    while i + 1 < bytes.len() {
                        if bytes[i] == b'/' && bytes[i + 1] == b'*' {
                            depth += 1;
                            i += 2;
                        } else if bytes[i] == b'*' && bytes[i + 1] == b'/' {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                end = i;
                                break;
                            }
                        } else {
                            i += 1;
                        }
                    }
                    self.pos = end;
                }
                b'"' => {
                    let mut i = start + 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    self.pos = (i + 1).min(bytes.len());
                    return Some(Tok::Literal(start));
                }
                b'\'' => {
                    let mut i = start + 1;
                    while i < bytes.len() && bytes[i] != b'\'' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    self.pos = (i + 1).min(bytes.len());
                    return Some(Tok::Literal(start));
                }
                b'(' | b')' | b'[' | b']' | b'{' | b'}' | b',' | b':' => {
                    self.pos += 1;
                    return Some(Tok::Punct(start, c));
                }
                b'r' | b'b' if raw_string_end(bytes, start).is_some() => {
                    self.pos = raw_string_end(bytes, start).unwrap_or(bytes.len());
                    return Some(Tok::Literal(start));
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let mut i = start;
                    while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_')
                    {
                        i += 1;
                    }
                    self.pos = i;
                    return Some(Tok::Ident(start, &self.text[start..i]));
                }
                c if c.is_ascii_digit() || c == b'-' || c == b'+' || c == b'.' => {
                    let mut i = start + 1;
                    while i < bytes.len()
                        && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'_'))
                    {
                        i += 1;
                    }
                    self.pos = i;
                    return Some(Tok::Literal(start));
                }
                _ => {
                    // Anything else (e.g. `#![enable(...)]`'s `#` and `!`) is skipped, a
                    // whole character at a time.
                    self.pos += self
                        .text
                        .get(start..)
                        .and_then(|t| t.chars().next())
                        .map_or(1, char::len_utf8);
                }
            }
        }
    }
}

/// If a raw string (`r"…"`, `r#"…"#`, `br"…"`) starts at `start`, the offset just past
/// it (or the end of the text, for one never closed). Raw strings have no escapes: they end
/// at the first `"` followed by as many `#` as opened them.
fn raw_string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    if bytes.get(i) == Some(&b'b') {
        i += 1;
    }
    if bytes.get(i) != Some(&b'r') {
        return None;
    }
    i += 1;
    let hashes = bytes[i..].iter().take_while(|&&b| b == b'#').count();
    i += hashes;
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    while i < bytes.len() {
        if bytes[i] == b'"'
            && bytes.len() > i + hashes
            && bytes[i + 1..=i + hashes].iter().all(|&b| b == b'#')
        {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    Some(bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unclosed_comment_ending_in_a_wide_character_is_one_token_run() {
        // Found by the `scenario` fuzz target: the comment's end landed inside the `\u{9178d}`.
        let text = "( a: 1 /* never closed \u{9178d}";
        let toks: Vec<_> = Tokens::new(text).collect();
        assert_eq!(toks.len(), 4, "( a : 1");
        assert!(find_includes(text).is_empty());
    }

    #[test]
    fn raw_strings_hide_includes_and_quotes() {
        let text = r####"( a: r#"say "hi include("no.ron")"#, b: br"x", c: include("y.ron"), d: r##"q"#"## )"####;
        let found: Vec<_> = find_includes(text).into_iter().map(|i| i.path).collect();
        assert_eq!(found, ["y.ron"]);
        // A raw identifier is not a string.
        assert_eq!(raw_string_end(b"r#type: 1", 0), None);
        assert_eq!(raw_string_end(b"r\"never closed", 0), Some(14));
    }

    #[test]
    fn includes_are_found_outside_strings_and_comments() {
        let text = r#"( a: include("x.ron"), // include("no.ron")
            b: "include(\"no.ron\")", c: include( "y.ron" ) )"#;
        let found: Vec<_> = find_includes(text).into_iter().map(|i| i.path).collect();
        assert_eq!(found, ["x.ron", "y.ron"]);
    }

    #[test]
    fn positions_map_back_through_an_include() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inner.ron"), "[\n  1,\n  oops,\n]").unwrap();
        let root = dir.path().join("root.ron");
        std::fs::write(&root, "(\n  xs: include(\"inner.ron\"),\n  y: 2,\n)").unwrap();
        let map = SourceMap::load(&root).unwrap();
        let oops = map.text.find("oops").unwrap();
        let at = map.locate(oops);
        assert_eq!(map.path(at.file).file_name().unwrap(), "inner.ron");
        assert_eq!((at.line, at.col), (3, 3));
        let y = map.text.find("y:").unwrap();
        let at = map.locate(y);
        assert_eq!((at.file, at.line, at.col), (0, 3, 3));
    }

    #[test]
    fn a_missing_include_names_the_including_line() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root.ron");
        std::fs::write(&root, "(\n  xs: include(\"gone.ron\"),\n)").unwrap();
        let err = SourceMap::load(&root).unwrap_err();
        let p = &err.problems[0];
        assert!(p.message.contains("gone.ron"), "{}", p.message);
        assert_eq!((p.line, p.col), (2, 7));
        assert!(p.path.ends_with("root.ron"));
    }

    #[test]
    fn an_include_cycle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a.ron");
        std::fs::write(&root, "include(\"a.ron\")").unwrap();
        let err = SourceMap::load(&root).unwrap_err();
        assert!(err.problems[0].message.contains("cycle"), "{err}");
    }
}
