//! Reading the parsed TOML tree with spans: tables whose every key must be known, typed values,
//! and errors placed at the offending key or value.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::duration::{parse_duration, DURATION_HINT};
use super::error::{clamp, ScenarioError};

pub(crate) type Result<T> = std::result::Result<T, ScenarioError>;
pub(crate) type Val<'i> = Spanned<DeValue<'i>>;

/// The file being decoded: its name (for messages) and its text (for locations).
pub(crate) struct Doc<'a> {
    pub file: &'a Path,
    pub src: &'a str,
}

impl Doc<'_> {
    /// An error at the start of `span`.
    pub(super) fn err(&self, span: &Range<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(self.file, self.src, span.start, message)
    }

    /// The span of bytes `inner` of a string value's content, when the source spells the
    /// content literally (no escapes); otherwise the whole value.
    pub(super) fn inner_span(&self, s: &Str, inner: Range<usize>) -> Range<usize> {
        let span = clamp(self.src, &s.span);
        let raw = &self.src[span.clone()];
        let q = if raw.starts_with("\"\"\"") || raw.starts_with("'''") { 3 } else { 1 };
        if raw.len() < 2 * q {
            return span;
        }
        let mut body = &raw[q..raw.len() - q];
        let mut skip = q;
        if q == 3 {
            for nl in ["\r\n", "\n"] {
                if let Some(b) = body.strip_prefix(nl) {
                    body = b;
                    skip += nl.len();
                    break;
                }
            }
        }
        if body == s.value {
            span.start + skip + inner.start..span.start + skip + inner.end
        } else {
            span
        }
    }
}

/// A string value with its span.
#[derive(Debug, Clone)]
pub(crate) struct Str {
    pub value: String,
    pub span: Range<usize>,
}

/// How a value is described after "is" in messages: `the string "x"`, `the integer 3` ...
pub(crate) fn found(v: &DeValue<'_>) -> String {
    match v {
        DeValue::String(s) => {
            let mut t: String = s.chars().take(40).collect();
            if t.len() < s.len() {
                t.push_str("...");
            }
            format!("the string {t:?}")
        }
        DeValue::Integer(i) => format!("the integer {}", i.as_str()),
        DeValue::Float(f) => format!("the float {}", f.as_str()),
        DeValue::Boolean(b) => format!("the boolean {b}"),
        DeValue::Datetime(d) => format!("the date-time {d}"),
        DeValue::Array(_) => "an array".into(),
        DeValue::Table(_) => "a table".into(),
    }
}

/// Turns a parsed integer into an `i64`, or says why it cannot be one.
pub(crate) fn int_of(v: &DeValue<'_>) -> Option<Option<i64>> {
    match v {
        DeValue::Integer(i) => {
            let digits = i.as_str().replace('_', "");
            let (neg, digits) = match digits.strip_prefix('-') {
                Some(d) => (true, d.to_string()),
                None => (false, digits.trim_start_matches('+').to_string()),
            };
            let n = i64::from_str_radix(&digits, i.radix()).ok().map(|n| if neg { -n } else { n });
            Some(n)
        }
        _ => None,
    }
}

/// A key as messages show it: bare when it is a plain word, quoted otherwise.
pub(crate) fn key_name(key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c)) {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// A table being read: keys are taken one by one; [`Table::check_keys`] refuses any other key.
pub(crate) struct Table<'d, 'i> {
    pub doc: &'d Doc<'d>,
    /// How messages name this table: `service "web"`, `timeline step 2`, `the scenario`.
    pub what: String,
    /// The table's span (its header, or the inline table).
    pub span: Range<usize>,
    entries: BTreeMap<String, (Range<usize>, Val<'i>)>,
}

impl<'d, 'i> Table<'d, 'i> {
    /// Reads `v` as a table, or says it is not one.
    pub(super) fn new(doc: &'d Doc<'d>, what: impl Into<String>, v: Val<'i>, expected: &str) -> Result<Self> {
        let what = what.into();
        let span = v.span();
        match v.into_inner() {
            DeValue::Table(t) => Ok(Self::from_table(doc, what, span, t)),
            other => Err(doc.err(&span, format!("{what} is {}; expected {expected}", found(&other)))),
        }
    }

    /// Wraps an already parsed table.
    pub(super) fn from_table(doc: &'d Doc<'d>, what: String, span: Range<usize>, t: DeTable<'i>) -> Self {
        let entries = t.into_iter().map(|(k, v)| (k.get_ref().to_string(), (k.span(), v))).collect();
        Self { doc, what, span, entries }
    }

    /// Refuses the first key (in file order) that is not in `allowed`.
    pub(super) fn check_keys(&self, allowed: &[&str]) -> Result<()> {
        let unknown = self.entries.iter().filter(|(k, _)| !allowed.contains(&k.as_str())).min_by_key(|(_, (span, _))| span.start);
        match unknown {
            Some((k, (span, _))) => Err(self.doc.err(span, format!("unknown key {k:?} in {}; expected one of {}", self.what, allowed.join(", ")))),
            None => Ok(()),
        }
    }

    /// Whether the key is present (and not yet taken).
    pub(super) fn has(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// The string value at `key`, left in the table (`None` when absent or not a string).
    pub(super) fn peek_str(&self, key: &str) -> Option<Str> {
        self.entries.get(key).and_then(|(_, v)| match v.get_ref() {
            DeValue::String(s) => Some(Str { value: s.to_string(), span: v.span() }),
            _ => None,
        })
    }

    /// The span of a key still in the table.
    /// Whether the value at `key` is a table (`None` when absent).
    pub(super) fn peek_is_table(&self, key: &str) -> Option<bool> {
        self.entries.get(key).map(|(_, v)| matches!(v.get_ref(), DeValue::Table(_)))
    }

    pub(super) fn key_span(&self, key: &str) -> Option<Range<usize>> {
        self.entries.get(key).map(|(s, _)| s.clone())
    }

    /// Takes the value of `key`, if present.
    pub(super) fn take(&mut self, key: &str) -> Option<Val<'i>> {
        self.entries.remove(key).map(|(_, v)| v)
    }

    /// Takes every remaining entry, in file order.
    pub(super) fn take_all(&mut self) -> Vec<(Str, Val<'i>)> {
        let mut v: Vec<(Str, Val<'i>)> = std::mem::take(&mut self.entries).into_iter().map(|(k, (span, v))| (Str { value: k, span }, v)).collect();
        v.sort_by_key(|(k, _)| k.span.start);
        v
    }

    /// The error for a missing key, placed at the table.
    pub(super) fn missing(&self, key: &str, example: &str) -> ScenarioError {
        self.doc.err(&self.span, format!("{} has no key {key:?}; expected {key} = {example}", self.what))
    }

    /// The error for a value of the wrong kind.
    pub(super) fn wrong(&self, key: &str, v: &Val<'_>, expected: &str) -> ScenarioError {
        self.doc.err(&v.span(), format!("{} in {} is {}; expected {expected}", key_name(key), self.what, found(v.get_ref())))
    }

    /// An error about the value of `key`, at `span`.
    pub(super) fn bad(&self, key: &str, span: &Range<usize>, why: impl std::fmt::Display) -> ScenarioError {
        self.doc.err(span, format!("{} in {}: {why}", key_name(key), self.what))
    }

    /// Takes a required value.
    pub(super) fn required(&mut self, key: &str, example: &str) -> Result<Val<'i>> {
        self.take(key).ok_or_else(|| self.missing(key, example))
    }

    /// Takes an optional string.
    pub(super) fn str(&mut self, key: &str) -> Result<Option<Str>> {
        self.take(key).map(|v| self.as_str(key, v, "a string")).transpose()
    }

    /// Takes a required string.
    pub(super) fn req_str(&mut self, key: &str, example: &str) -> Result<Str> {
        let v = self.required(key, example)?;
        self.as_str(key, v, &format!("a string such as {example}"))
    }

    /// Reads a value as a string.
    pub(super) fn as_str(&self, key: &str, v: Val<'_>, expected: &str) -> Result<Str> {
        let span = v.span();
        match v.into_inner() {
            DeValue::String(s) => Ok(Str { value: s.into_owned(), span }),
            other => Err(self.doc.err(&span, format!("{} in {} is {}; expected {expected}", key_name(key), self.what, found(&other)))),
        }
    }

    /// Takes an optional boolean.
    pub(super) fn bool(&mut self, key: &str) -> Result<Option<bool>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => match v.get_ref() {
                DeValue::Boolean(b) => Ok(Some(*b)),
                _ => Err(self.wrong(key, &v, "true or false")),
            },
        }
    }

    /// Takes an optional integer within `range`.
    pub(super) fn int(&mut self, key: &str, range: std::ops::RangeInclusive<i64>) -> Result<Option<i64>> {
        let Some(v) = self.take(key) else { return Ok(None) };
        let expected = format!("an integer from {} to {}", range.start(), range.end());
        match int_of(v.get_ref()) {
            Some(Some(n)) if range.contains(&n) => Ok(Some(n)),
            _ => Err(self.wrong(key, &v, &expected)),
        }
    }

    /// Takes an optional duration string.
    pub(super) fn duration(&mut self, key: &str) -> Result<Option<Duration>> {
        let Some(v) = self.take(key) else { return Ok(None) };
        let s = self.as_str(key, v, &format!("{DURATION_HINT} (a string with a unit)"))?;
        parse_duration(&s.value).map(Some).map_err(|e| self.bad(key, &s.span, e))
    }

    /// Takes an optional duration that must be more than zero.
    pub(super) fn positive_duration(&mut self, key: &str) -> Result<Option<Duration>> {
        let span = self.entries.get(key).map(|(_, v)| v.span());
        let d = self.duration(key)?;
        if d == Some(Duration::ZERO) {
            let span = span.unwrap_or(self.span.clone());
            return Err(self.bad(key, &span, "\"0s\" is not allowed here; expected a duration longer than zero"));
        }
        Ok(d)
    }

    /// Takes an optional array of strings.
    pub(super) fn str_list(&mut self, key: &str, expected: &str) -> Result<Option<(Range<usize>, Vec<Str>)>> {
        let Some(v) = self.take(key) else { return Ok(None) };
        let span = v.span();
        let DeValue::Array(items) = v.get_ref() else {
            return Err(self.wrong(key, &v, expected));
        };
        let mut out = Vec::new();
        for item in items.iter() {
            match item.get_ref() {
                DeValue::String(s) => out.push(Str { value: s.to_string(), span: item.span() }),
                other => return Err(self.doc.err(&item.span(), format!("an element of {key} in {} is {}; expected {expected}", self.what, found(other)))),
            }
        }
        Ok(Some((span, out)))
    }

    /// Takes an optional nested table.
    pub(super) fn table(&mut self, key: &str, what: impl Into<String>, expected: &str) -> Result<Option<Table<'d, 'i>>> {
        let doc = self.doc;
        self.take(key).map(|v| Table::new(doc, what, v, expected)).transpose()
    }

    /// Takes an optional array of tables.
    pub(super) fn tables(&mut self, key: &str, expected: &str) -> Result<Vec<Val<'i>>> {
        let Some(v) = self.take(key) else { return Ok(Vec::new()) };
        let span = v.span();
        match v.into_inner() {
            DeValue::Array(items) => Ok(items.into_iter().collect()),
            other => Err(self.doc.err(&span, format!("{key} in {} is {}; expected {expected}", self.what, found(&other)))),
        }
    }
}

/// Fails on a key that names `name` twice, e.g. two elements with the same name.
pub(crate) fn check_unique<'a>(doc: &Doc<'_>, kind: &str, names: impl IntoIterator<Item = &'a Str>) -> Result<()> {
    let mut seen = BTreeMap::new();
    for n in names {
        if let Some(first) = seen.insert(n.value.as_str(), n.span.clone()) {
            let (line, _) = super::error::line_col(doc.src, first.start);
            return Err(doc.err(&n.span, format!("{kind} {:?} is declared twice (first on line {line}); expected unique names", n.value)));
        }
    }
    Ok(())
}
