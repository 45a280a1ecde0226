//! Diagnostics for scenario authors: what is wrong, where (file:line:col), in which field,
//! and a hint for fixing it.

use std::fmt;
use std::path::PathBuf;

use super::load::{SourceMap, Tok, Tokens};

/// A position in one of the files of a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Index into [`SourceMap::files`].
    pub file: usize,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

/// One problem found in a scenario, not yet tied to file names.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// What is wrong.
    pub message: String,
    /// Where, when known.
    pub location: Option<Location>,
    /// The field path, e.g. `personas[2].basket[0].p`.
    pub field: Option<String>,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a message and an optional location.
    pub fn new(message: impl Into<String>, location: Option<Location>) -> Self {
        Self {
            message: message.into(),
            location,
            field: None,
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// A diagnostic resolved against its file: ready to print.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The file the problem is in.
    pub path: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub col: usize,
    /// The field path, when known.
    pub field: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// The offending source line, for display.
    pub source_line: String,
}

/// Every problem found in a scenario. Displayed one per paragraph, compiler style.
#[derive(Debug, Clone)]
pub struct ScenarioError {
    /// The problems, in the order found.
    pub problems: Vec<Problem>,
}

impl ScenarioError {
    /// Resolves diagnostics against the files they point into.
    pub fn resolve(map: &SourceMap, diagnostics: Vec<Diagnostic>, root: &std::path::Path) -> Self {
        let problems = diagnostics
            .into_iter()
            .map(|d| match d.location {
                Some(at) if at.file < map.files.len() => Problem {
                    path: map.path(at.file).to_path_buf(),
                    line: at.line,
                    col: at.col,
                    field: d.field,
                    message: shorten(d.message),
                    hint: d.hint,
                    source_line: map.line_text(at.file, at.line).to_owned(),
                },
                _ => Problem {
                    path: root.to_path_buf(),
                    line: 0,
                    col: 0,
                    field: d.field,
                    message: shorten(d.message),
                    hint: d.hint,
                    source_line: String::new(),
                },
            })
            .collect();
        Self { problems }
    }
}

/// The part of a source line shown under an error: at most [`SNIPPET_WIDTH`] characters
/// around column `col` (1-based, in characters), with `…` where it was cut, and the
/// column of the caret within it.
fn snippet(line: &str, col: usize) -> (String, usize) {
    use crate::limits::SNIPPET_WIDTH;
    let line = line.trim_end_matches('\r');
    let len = line.chars().count();
    if len <= SNIPPET_WIDTH {
        return (line.to_owned(), col);
    }
    let first = col
        .saturating_sub(SNIPPET_WIDTH / 2)
        .min(len.saturating_sub(SNIPPET_WIDTH));
    let mut out = String::new();
    if first > 0 {
        out.push('…');
    }
    out.extend(line.chars().skip(first).take(SNIPPET_WIDTH));
    if first + SNIPPET_WIDTH < len {
        out.push('…');
    }
    (out, col - first + usize::from(first > 0))
}

/// A message cut to a readable length (it may quote a value the author wrote).
fn shorten(message: String) -> String {
    const MAX: usize = 400;
    if message.chars().count() <= MAX {
        return message;
    }
    let mut cut: String = message.chars().take(MAX).collect();
    cut.push_str("… (cut)");
    cut
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if p.line > 0 {
                write!(f, "{}:{}:{}: ", p.path.display(), p.line, p.col)?;
            } else {
                write!(f, "{}: ", p.path.display())?;
            }
            if let Some(field) = &p.field {
                write!(f, "`{field}`: ")?;
            }
            write!(f, "{}", p.message)?;
            if p.line > 0 && !p.source_line.is_empty() {
                let gutter = p.line.to_string().len();
                let (snippet, col) = snippet(&p.source_line, p.col);
                write!(
                    f,
                    "\n{:gutter$} |\n{} | {}\n{:gutter$} | {:>col$}",
                    "",
                    p.line,
                    snippet,
                    "",
                    "^",
                    col = col
                )?;
            }
            if let Some(hint) = &p.hint {
                write!(f, "\n  hint: {hint}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // Jaro-Winkler costs the product of the lengths: long words, and candidates of a very
    // different length (never close matches), are not compared.
    const LONGEST: usize = 64;
    if word.len() > LONGEST {
        return None;
    }
    candidates
        .into_iter()
        .filter(|c| c.len() <= LONGEST && c.len().abs_diff(word.len()) <= 4)
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// One step of a path into a RON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// A struct field.
    Field(&'a str),
    /// A list or tuple element.
    Index(usize),
    /// A map entry by its string key. A path that ends with one finds the key, not the
    /// value: that is what an unknown name points at.
    Key(&'a str),
}

/// Renders a field path such as `personas[2].basket[0].p`.
pub fn path_string(path: &[Step<'_>]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            Step::Field(name) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(name);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
            Step::Key(k) => s.push_str(&format!("[{k:?}]")),
        }
    }
    s
}

/// Finds the byte offset of the value at `path` in RON `text`.
///
/// Walks the token stream: a field is `name: value` inside `(...)`, an index counts
/// top-level elements of `[...]` or `(...)`. Enum wrappers such as `Festival(...)` or
/// `Some(...)` are stepped through. When a step cannot be found the offset of the deepest
/// value found is returned, so an error always points somewhere useful.
pub fn find_value(text: &str, path: &[Step<'_>]) -> usize {
    let toks: Vec<Tok<'_>> = Tokens::new(text).collect();
    let mut at = skip_to_value(&toks, 0);
    for (n, step) in path.iter().enumerate() {
        match descend(text, &toks, at, *step) {
            Some(next) => at = next,
            None => break,
        }
        if n + 1 == path.len() && matches!(step, Step::Key(_)) {
            at -= 2;
        }
    }
    toks.get(at).map_or(0, Tok::offset)
}

/// The byte range in RON `text` of the value at `path`, when every step is found: from its
/// first token to the token after it (trailing space and comments included).
pub fn find_span(text: &str, path: &[Step<'_>]) -> Option<(usize, usize)> {
    let toks: Vec<Tok<'_>> = Tokens::new(text).collect();
    let mut at = skip_to_value(&toks, 0);
    for step in path {
        at = descend(text, &toks, at, *step)?;
    }
    if matches!(path.last(), Some(Step::Key(_))) {
        at -= 2;
    }
    let start = toks.get(at)?.offset();
    let end = toks
        .get(skip_value(&toks, at))
        .map_or(text.len(), Tok::offset);
    Some((start, end))
}

/// Skips leading `#![enable(...)]` attributes: returns the index of the first value token.
/// (`#` and `!` are not tokens; the attribute starts at its `[`.)
fn skip_to_value(toks: &[Tok<'_>], i: usize) -> usize {
    if let (Some(Tok::Punct(_, b'[')), Some(Tok::Ident(_, "enable"))) =
        (toks.get(i), toks.get(i + 1))
    {
        let mut depth = 0i32;
        for (j, t) in toks.iter().enumerate().skip(i) {
            match t {
                Tok::Punct(_, b'(' | b'[') => depth += 1,
                Tok::Punct(_, b')' | b']') => {
                    depth -= 1;
                    if depth == 0 {
                        return skip_to_value(toks, j + 1);
                    }
                }
                _ => {}
            }
        }
    }
    i
}

/// Index of the token that opens the container of the value at `i`, stepping through a
/// leading identifier (`Name(`, `Some(`) and newtype wrappers.
fn open_of(toks: &[Tok<'_>], mut i: usize, want_list: bool) -> Option<usize> {
    loop {
        match toks.get(i)? {
            Tok::Ident(..) => i += 1,
            Tok::Punct(_, b'[') => return Some(i),
            Tok::Punct(_, b'(') => {
                // `Some([` or `Slots([`: a newtype wrapping a list.
                if want_list && matches!(toks.get(i + 1), Some(Tok::Punct(_, b'['))) {
                    return Some(i + 1);
                }
                // A newtype wrapping a named struct: `Some(Name(`.
                if matches!(toks.get(i + 1), Some(Tok::Ident(..)))
                    && matches!(toks.get(i + 2), Some(Tok::Punct(_, b'(')))
                {
                    i += 1;
                    continue;
                }
                return Some(i);
            }
            Tok::Punct(_, b'{') => return Some(i),
            _ => return None,
        }
    }
}

/// The index just past the value starting at `i`.
fn skip_value(toks: &[Tok<'_>], mut i: usize) -> usize {
    let mut depth = 0i32;
    while let Some(t) = toks.get(i) {
        match t {
            Tok::Punct(_, b'(' | b'[' | b'{') => depth += 1,
            Tok::Punct(_, b')' | b']' | b'}') => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            Tok::Punct(_, b',') if depth == 0 => return i,
            _ if depth == 0 => {
                // An identifier followed by `(` continues the same value.
                if let Tok::Ident(..) = t
                    && matches!(toks.get(i + 1), Some(Tok::Punct(_, b'(')))
                {
                    i += 1;
                    continue;
                }
                return i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    i
}

fn descend(text: &str, toks: &[Tok<'_>], at: usize, step: Step<'_>) -> Option<usize> {
    match step {
        Step::Key(key) => {
            let open = open_of(toks, at, false)?;
            let quoted = format!("{key:?}");
            let mut i = open + 1;
            loop {
                match (toks.get(i)?, toks.get(i + 1)) {
                    (Tok::Literal(o), Some(Tok::Punct(_, b':'))) => {
                        if text[*o..].starts_with(&quoted) {
                            return Some(i + 2);
                        }
                        i = skip_value(toks, i + 2);
                    }
                    _ => return None,
                }
                match toks.get(i)? {
                    Tok::Punct(_, b',') => i += 1,
                    _ => return None,
                }
            }
        }
        Step::Field(name) => {
            let open = open_of(toks, at, false)?;
            let mut i = open + 1;
            loop {
                match (toks.get(i)?, toks.get(i + 1)) {
                    (Tok::Ident(_, id), Some(Tok::Punct(_, b':'))) => {
                        if *id == name {
                            return Some(i + 2);
                        }
                        i = skip_value(toks, i + 2);
                    }
                    (Tok::Punct(_, b')' | b']' | b'}'), _) => return None,
                    _ => i = skip_value(toks, i),
                }
                match toks.get(i)? {
                    Tok::Punct(_, b',') => i += 1,
                    _ => return None,
                }
            }
        }
        Step::Index(n) => {
            let open = open_of(toks, at, true)?;
            let mut i = open + 1;
            for _ in 0..n {
                if matches!(toks.get(i)?, Tok::Punct(_, b')' | b']' | b'}')) {
                    return None;
                }
                i = skip_value(toks, i);
                match toks.get(i)? {
                    Tok::Punct(_, b',') => i += 1,
                    _ => return None,
                }
            }
            match toks.get(i)? {
                Tok::Punct(_, b')' | b']' | b'}') => None,
                _ => Some(i),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_cut_around_the_caret() {
        let line = format!("{}X{}", "a".repeat(5000), "b".repeat(5000));
        let (cut, col) = snippet(&line, 5001);
        assert!(cut.chars().count() <= crate::limits::SNIPPET_WIDTH + 2);
        assert_eq!(cut.chars().nth(col - 1), Some('X'));
        assert_eq!(snippet("short", 3), ("short".to_owned(), 3));
    }

    fn at<'a>(text: &'a str, path: &[Step<'_>]) -> &'a str {
        let o = find_value(text, path);
        &text[o..(o + 6).min(text.len())]
    }

    #[test]
    fn finds_fields_and_indices() {
        let text = "#![enable(implicit_some)]\nScenario(name: \"x\", personas: [Persona(name: \"a\", basket: [(p: 0.5), (p: 1.5)])], days: 3)";
        use Step::*;
        assert_eq!(at(text, &[Field("days")]), "3)");
        assert_eq!(
            at(
                text,
                &[
                    Field("personas"),
                    Index(0),
                    Field("basket"),
                    Index(1),
                    Field("p")
                ]
            ),
            "1.5)])"
        );
    }

    #[test]
    fn steps_through_enum_wrappers() {
        use Step::*;
        let text = "(events: [Festival(name: \"a\", traffic: 2.0), Dip(name: \"b\", traffic: 0.9)], hours: Slots([(\"1\", \"2\"), (\"3\", \"4\")]))";
        assert_eq!(
            at(text, &[Field("events"), Index(1), Field("traffic")]),
            "0.9)],"
        );
        assert_eq!(at(text, &[Field("hours"), Index(1)]), "(\"3\", ");
    }

    #[test]
    fn a_missing_step_stops_at_the_deepest_value_found() {
        use Step::*;
        let text = "(a: (b: 1))";
        assert_eq!(at(text, &[Field("a"), Field("zzz")]), "(b: 1)");
    }

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(did_you_mean("dayz", ["days", "seed", "name"]), Some("days"));
        assert_eq!(did_you_mean("colour", ["days", "seed"]), None);
    }
}
