//! Streaming list output: the records of an `array`, `table` or JSON-list parse written as
//! compact JSON one at a time, with no `serde_json::Value` tree of the whole result.
//!
//! [`CompiledRules::each_record`] hands every record to a [`Records`] sink as it is parsed;
//! [`JsonList`] is the sink that serializes it (status normalization included) into a writer,
//! and the tree path ([`CompiledRules::apply`]) collects the same records into a list. The
//! bytes [`JsonList`] writes are exactly `Value::to_string()` of the tree path's normalized
//! result passed through [`escape::json`] (a property test holds the two to it), so
//! `cpi parse` prints the same output either way.

use std::io::Write;

use serde_json::{Map, Value};

use super::CompiledRules;
use crate::error::{Error, Result};
use crate::escape;
use crate::provider::Provider;
use crate::status::{StatusMapper, Vocabulary};

/// One field's value in a record: text borrowed from the output, or a converted value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'o> {
    /// A plain captured string (no transform).
    Text(&'o str),
    /// A transformed value (number, boolean, JSON) or a whole-body capture.
    Value(Value),
}

impl Cell<'_> {
    /// The cell as a JSON value.
    pub fn into_value(self) -> Value {
        match self {
            Cell::Text(text) => Value::String(text.to_string()),
            Cell::Value(value) => value,
        }
    }

    /// The cell's text when it is a string.
    fn as_str(&self) -> Option<&str> {
        match self {
            Cell::Text(text) => Some(text),
            Cell::Value(Value::String(text)) => Some(text),
            Cell::Value(_) => None,
        }
    }

    fn write(&self, buf: &mut Vec<u8>) {
        // Serializing into a Vec cannot fail.
        let _ = match self {
            Cell::Text(text) => serde_json::to_writer(&mut *buf, text),
            Cell::Value(value) => serde_json::to_writer(&mut *buf, value),
        };
    }
}

/// Where the records of a list parse go, one at a time, in output order.
pub trait Records {
    /// A record as its fields in rule order (`array` rules: text borrowed from the output).
    fn fields(&mut self, fields: &mut [(&str, Cell<'_>)]) -> Result<()>;
    /// A record built as an object (`table` rows, JSON-list items).
    fn object(&mut self, object: Map<String, Value>) -> Result<()>;
}

/// A record's fields as one JSON object, in order.
pub(super) fn tree(fields: &mut [(&str, Cell<'_>)]) -> Value {
    let mut map = Map::with_capacity(fields.len());
    for (name, cell) in fields.iter_mut() {
        let cell = std::mem::replace(cell, Cell::Value(Value::Null));
        map.insert((*name).to_string(), cell.into_value());
    }
    Value::Object(map)
}

/// The tree path's sink: every record collected into a list.
#[derive(Debug, Default)]
pub(super) struct Tree(pub(super) Vec<Value>);

impl Records for Tree {
    fn fields(&mut self, fields: &mut [(&str, Cell<'_>)]) -> Result<()> {
        self.0.push(tree(fields));
        Ok(())
    }

    fn object(&mut self, object: Map<String, Value>) -> Result<()> {
        self.0.push(Value::Object(object));
        Ok(())
    }
}

/// Writes a list's records as one compact JSON array, record by record, with statuses
/// normalized as [`StatusMapper::normalize`] would and unsafe characters escaped as
/// [`escape::json`] does; [`JsonList::finish`] closes the array.
pub struct JsonList<W: Write> {
    out: W,
    count: usize,
    status: Option<(StatusMapper, Vocabulary)>,
    buf: Vec<u8>,
}

impl<W: Write> JsonList<W> {
    /// A writer into `out`; `status` normalizes each record's statuses in that vocabulary.
    pub fn new(out: W, status: Option<(StatusMapper, Vocabulary)>) -> Self {
        JsonList {
            out,
            count: 0,
            status,
            buf: Vec::with_capacity(256),
        }
    }

    /// Closes the array (`[]` when there was no record) and hands the writer back.
    pub fn finish(mut self) -> Result<W> {
        let end: &[u8] = if self.count == 0 { b"[]" } else { b"]" };
        self.out.write_all(end).map_err(write_error)?;
        Ok(self.out)
    }

    /// Writes the record in `self.buf`, after a `[` or `,`.
    fn emit(&mut self) -> Result<()> {
        let lead: &[u8] = if self.count == 0 { b"[" } else { b"," };
        self.count += 1;
        self.out.write_all(lead).map_err(write_error)?;
        // Printable ASCII (the usual record) has nothing to escape: no scan by characters.
        if self.buf.iter().all(|b| (0x20..0x7f).contains(b)) {
            return self.out.write_all(&self.buf).map_err(write_error);
        }
        let text = std::str::from_utf8(&self.buf)
            .map_err(|e| Error::internal(format!("serialized JSON is not UTF-8: {e}")))?;
        self.out
            .write_all(escape::json(text).as_bytes())
            .map_err(write_error)
    }
}

fn write_error(err: std::io::Error) -> Error {
    Error::internal(format!("cannot write the parsed result: {err}"))
}

impl<W: Write> Records for JsonList<W> {
    fn fields(&mut self, fields: &mut [(&str, Cell<'_>)]) -> Result<()> {
        // As `StatusMapper::normalize`: nested values first, then the record's own `status`.
        let mut standard = None;
        if let Some((mapper, vocabulary)) = &self.status {
            for (_, cell) in fields.iter_mut() {
                if let Cell::Value(value) = cell {
                    mapper.normalize(value, *vocabulary);
                }
            }
            if !fields.iter().any(|(name, _)| *name == "raw_status") {
                standard = fields
                    .iter()
                    .find(|(name, _)| *name == "status")
                    .and_then(|(_, cell)| cell.as_str())
                    .map(|raw| mapper.map(raw, *vocabulary));
            }
        }
        let buf = &mut self.buf;
        buf.clear();
        buf.push(b'{');
        for (i, (name, cell)) in fields.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let _ = serde_json::to_writer(&mut *buf, name);
            buf.push(b':');
            match &standard {
                Some(standard) if *name == "status" => {
                    let _ = serde_json::to_writer(&mut *buf, standard);
                    buf.extend_from_slice(b",\"raw_status\":");
                    cell.write(buf);
                }
                _ => cell.write(buf),
            }
        }
        buf.push(b'}');
        self.emit()
    }

    fn object(&mut self, object: Map<String, Value>) -> Result<()> {
        let mut value = Value::Object(object);
        if let Some((mapper, vocabulary)) = &self.status {
            mapper.normalize(&mut value, *vocabulary);
        }
        self.buf.clear();
        let _ = serde_json::to_writer(&mut self.buf, &value);
        self.emit()
    }
}

/// Writes what `cpi parse` prints as JSON for `output` (without the final newline), record
/// by record, when the action's rules make a list; `Ok(false)`, having written nothing, when
/// they do not (the caller takes [`crate::Engine::parse_saved`]'s tree path). On an error
/// some records may have been written: buffer `out` when that matters.
pub fn write_saved(
    provider: &Provider,
    action_name: &str,
    output: &str,
    out: &mut dyn Write,
) -> Result<bool> {
    let action = provider.action(action_name)?;
    let Some(rules) = action.rules()? else {
        return Ok(false);
    };
    if !rules.is_list() {
        return Ok(false);
    }
    let status = Vocabulary::for_flagged_action(action_name, action.normalize_status)
        .filter(|_| rules.may_yield_status())
        .map(|vocabulary| (StatusMapper::new(&provider.status_map), vocabulary));
    let mut list = JsonList::new(out, status);
    rules
        .each_record(output, &mut list)
        .and_then(|_| list.finish())
        .map_err(|e| e.context(&provider.name, action_name))?;
    Ok(true)
}

impl CompiledRules {
    /// Whether a result of these rules can hold a `status` field anywhere: a field named
    /// `status`, or a field whose value is JSON of the output's making (a `json` transform,
    /// a whole-body capture, a JSON pointer). Status normalization skips the others.
    pub fn may_yield_status(&self) -> bool {
        !self.json_fields.is_empty()
            || self
                .fields
                .iter()
                .chain(self.arrays.iter().flat_map(|a| &a.fields))
                .any(|f| {
                    f.name == "status"
                        || f.whole_body
                        || f.transform == Some(super::Transform::Json)
                })
            || self.table.as_ref().is_some_and(|t| t.may_yield_status())
    }
}
