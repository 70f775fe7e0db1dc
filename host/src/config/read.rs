//! Reading `tessera.toml` into its serde model one piece at a time, so that
//! one mistake does not hide the next: every section and every entry of an
//! array of tables (`[[clients]]`, …) is deserialized on its own, an unknown
//! key is reported and then set aside so the rest of its table is still read,
//! and each problem names its key and line.
//!
//! The structs stay strict (`deny_unknown_fields`); this module only decides
//! how far reading goes after the first error.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// At most this many unknown keys are set aside in one table before giving up
/// on it (a file that is mostly wrong says so soon enough).
const MAX_UNKNOWN_PER_TABLE: usize = 32;

/// Top-level entries of a parsed file, in the order they appear.
pub(super) type Entries<'t> = Vec<(String, Spanned<DeValue<'t>>)>;

/// Parses the text as TOML. A syntax error stops here: every one the parser
/// found is returned, with its line and column.
pub(super) fn parse(text: &str) -> Result<Entries<'_>, Vec<String>> {
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        return Err(errors
            .iter()
            .map(|e| {
                let at = e
                    .span()
                    .map(|s| format!("{}: ", position(text, s.start)))
                    .unwrap_or_default();
                format!("{at}{}", e.message().trim_end())
            })
            .collect());
    }
    let mut entries: Entries<'_> = root
        .into_inner()
        .into_iter()
        .map(|(k, v)| (k.into_inner().into_owned(), v))
        .collect();
    entries.sort_by_key(|(_, v)| v.span().start);
    Ok(entries)
}

/// Reads values of the file into serde types, collecting problems.
pub(super) struct Reader<'t> {
    text: &'t str,
    /// One line per problem, each naming the key.
    pub(super) problems: Vec<String>,
}

impl<'t> Reader<'t> {
    pub(super) fn new(text: &'t str) -> Reader<'t> {
        Reader {
            text,
            problems: Vec::new(),
        }
    }

    /// `line N` of a byte offset.
    pub(super) fn line(&self, span: &Range<usize>) -> String {
        format!("line {}", line_of(self.text, span.start))
    }

    /// Deserializes `value` (the table at `key`) into `T`. Unknown keys are
    /// each reported and removed, then reading is tried again; any other
    /// error is reported and gives `None`.
    pub(super) fn read<T: DeserializeOwned>(
        &mut self,
        key: &str,
        mut value: Spanned<DeValue<'t>>,
    ) -> Option<T> {
        for _ in 0..=MAX_UNKNOWN_PER_TABLE {
            let error = match T::deserialize(ValueDeserializer::from(value.clone())) {
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            let span = error.span().unwrap_or_else(|| value.span());
            let inner = key_at(value.get_ref(), &span);
            self.problems.push(format!(
                "{key}{inner} ({}): {}",
                self.line(&span),
                error.message().trim_end()
            ));
            let unknown = error.message().starts_with("unknown field");
            if !(unknown && remove_key_at(value.get_mut(), &span)) {
                return None;
            }
        }
        None
    }
}

/// The key path, relative to `value`, of the key or value that `span` points
/// into: `.secret_hash`, `.limits.max_headers`, `.stages[1]`; empty when it
/// is `value` itself (a missing field, say).
fn key_at(value: &DeValue<'_>, span: &Range<usize>) -> String {
    let inside = |s: Range<usize>| s.start <= span.start && span.end <= s.end;
    match value {
        DeValue::Table(table) => {
            for (k, v) in table.iter() {
                if inside(k.span()) {
                    return format!(".{}", k.get_ref());
                }
                if inside(v.span()) {
                    return format!(".{}{}", k.get_ref(), key_at(v.get_ref(), span));
                }
            }
            String::new()
        }
        DeValue::Array(items) => items
            .iter()
            .enumerate()
            .find(|(_, v)| inside(v.span()))
            .map(|(i, v)| format!("[{i}]{}", key_at(v.get_ref(), span)))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Removes the table entry whose key is at `span`, at any depth. Whether one
/// was found.
fn remove_key_at(value: &mut DeValue<'_>, span: &Range<usize>) -> bool {
    let inside = |s: Range<usize>| s.start <= span.start && span.end <= s.end;
    match value {
        DeValue::Table(table) => {
            let found = table
                .iter()
                .find(|(k, _)| inside(k.span()))
                .map(|(k, _)| k.clone());
            if let Some(k) = found {
                table.remove(&k);
                return true;
            }
            table
                .iter_mut()
                .any(|(_, v)| inside(v.span()) && remove_key_at(v.get_mut(), span))
        }
        DeValue::Array(items) => items
            .iter_mut()
            .any(|v| inside(v.span()) && remove_key_at(v.get_mut(), span)),
        _ => false,
    }
}

/// The string at `field` of a table value, if there is one (an entry's id,
/// to name it in messages and to know that it exists).
pub(super) fn string_field<'a>(value: &'a DeValue<'_>, field: &str) -> Option<&'a str> {
    match value {
        DeValue::Table(table) => table
            .iter()
            .find(|(k, _)| k.get_ref() == field)
            .and_then(|(_, v)| v.get_ref().as_str()),
        _ => None,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn position(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    format!(
        "line {}, column {}",
        line_of(text, offset),
        text[line_start..offset].chars().count() + 1
    )
}
