//! Parsers: turn an action's raw output into JSON with its `parse_rules`.
//!
//! Decided semantics (see the README's provider file reference):
//! - regexes are multi-line (`^`/`$` match at line boundaries); `group` defaults to the last
//!   capturing group, or the whole match when the regex has none;
//! - `object`/`properties`: each pattern runs on the whole output; a missing field is an error
//!   unless `optional` (then omitted); `boolean` fields are never missing (no match → false);
//! - `array`: the output is split by `separator` (a regex, default `\n`); records no pattern
//!   matches are skipped; every other record yields one object, in output order;
//! - `array_patterns`: the first capture group of each item regex is the item's index; items
//!   come out ordered by index (numerically when the indices are numbers);
//! - a whole-body capture (`(.*)`) yields the body as JSON when it is JSON, however formatted;
//! - `json` (an extension): fields read by JSON Pointer, see [`json`];
//! - `table` (an extension): column-aligned tables read by their header, see [`table`].

pub mod json;
pub mod rules;
pub mod table;

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
pub use rules::{ArrayPattern, ParseRules, Pattern, RuleKind};

/// Compiled-regex size limit, so a pathological pattern cannot exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 22;

/// The most fields one set of rules may declare (patterns plus array fields).
pub const MAX_FIELDS: usize = 256;

/// The most records (or array items) one output may yield.
pub const MAX_RECORDS: usize = 100_000;

/// The most text all extracted values of one output may add up to, in bytes: a rule with many
/// greedy fields would otherwise copy a large output once per field.
pub const MAX_RESULT_BYTES: usize = 64 << 20;

/// Counts records and extracted bytes against [`MAX_RECORDS`] and [`MAX_RESULT_BYTES`].
#[derive(Debug, Default)]
struct Budget {
    records: usize,
    bytes: usize,
}

impl Budget {
    fn record(&mut self) -> Result<()> {
        self.records += 1;
        if self.records > MAX_RECORDS {
            return Err(Error::provider(format!(
                "the output yields more than {MAX_RECORDS} records (the cap on records)"
            ))
            .with_detail("limit_records", MAX_RECORDS));
        }
        Ok(())
    }

    fn take(&mut self, text: &str) -> Result<()> {
        self.bytes += text.len();
        if self.bytes > MAX_RESULT_BYTES {
            return Err(Error::provider(format!(
                "the parsed result is larger than {MAX_RESULT_BYTES} bytes (the cap on result size)"
            ))
            .with_detail("limit_bytes", MAX_RESULT_BYTES));
        }
        Ok(())
    }
}

/// Refuses a regex that matches the empty string where it would run once per position or
/// per record: it turns any output into as many empty items as it has bytes.
fn refuse_empty_match(regex: &Regex, what: &str) -> Result<()> {
    if regex.is_match("") {
        return Err(Error::validation(format!(
            "{what} {:?} can match the empty string, which would split or match the output at \
             every position; make it match at least one character",
            regex.as_str()
        )));
    }
    Ok(())
}

/// Parse rules with their regexes compiled and checked.
#[derive(Debug, Clone)]
pub struct CompiledRules {
    kind: RuleKind,
    fields: Vec<Field>,
    separator: Regex,
    arrays: Vec<ArrayField>,
    json_fields: Vec<json::JsonField>,
    items: Option<json::Pointer>,
    table: Option<table::Table>,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    regex: Regex,
    group: usize,
    optional: bool,
    transform: Option<Transform>,
    whole_body: bool,
}

#[derive(Debug, Clone)]
struct ArrayField {
    name: String,
    index: Regex,
    fields: Vec<Field>,
}

/// A field transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// `boolean`: matched/true/yes/on/1/running/authenticated → true; no match/false/no/off/0 → false.
    Boolean,
    /// `number`: integers stay integers.
    Number,
    /// `json`: the captured text parsed as JSON.
    Json,
}

impl Transform {
    /// Parses a transform name; unknown names are validation errors.
    pub fn from_name(name: &str) -> Result<Transform> {
        match name {
            "boolean" | "bool" => Ok(Transform::Boolean),
            "number" | "int" | "integer" | "float" => Ok(Transform::Number),
            "json" => Ok(Transform::Json),
            other => Err(Error::validation(format!(
                "unknown transform '{other}' (expected boolean, number or json)"
            ))),
        }
    }
}

/// Compiles a regex the way every parse rule does (multi-line).
pub fn compile_regex(pattern: &str) -> std::result::Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .multi_line(true)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

const WHOLE_BODY: [&str; 10] = [
    "(.*)",
    "^(.*)$",
    "(.+)",
    "^(.+)$",
    "(?s)(.*)",
    "(?s)(.+)",
    "(?s)^(.*)$",
    "([\\s\\S]*)",
    "([\\s\\S]+)",
    "(?s).*",
];

fn compile_field(name: &str, pattern: &Pattern, within: &str) -> Result<Field> {
    let at = |what: String| {
        Error::validation(format!("{within} field '{name}': {what}")).with_detail("field", name)
    };
    if pattern.pointer.is_some() {
        return Err(at(
            "\"pointer\" fields only apply to rules of type 'json'; this rule set matches regexes"
                .into(),
        ));
    }
    if pattern.column.is_some() {
        return Err(at(
            "\"column\" fields only apply to rules of type 'table'; this rule set matches regexes"
                .into(),
        ));
    }
    let Some(source) = &pattern.regex else {
        return Err(at("needs a \"regex\"".into()));
    };
    let (regex, group) = regex_and_group(source, pattern.group).map_err(at)?;
    let transform = transform_of(pattern).map_err(at)?;
    let whole_body = WHOLE_BODY.contains(&source.as_str()) && group <= 1;
    Ok(Field {
        name: name.to_string(),
        regex,
        group,
        optional: pattern.optional,
        transform,
        whole_body,
    })
}

/// A field's regex and the capture group it takes (default: the last group, or the whole
/// match when the regex has none).
fn regex_and_group(
    source: &str,
    group: Option<usize>,
) -> std::result::Result<(Regex, usize), String> {
    let regex = compile_regex(source).map_err(|err| format!("invalid regex: {err}"))?;
    let groups = regex.captures_len() - 1;
    match group {
        Some(g) if g > groups => Err(format!(
            "group {g} does not exist: the regex {source:?} has {groups} capture group(s)"
        )),
        Some(g) => Ok((regex, g)),
        None => Ok((regex, groups)),
    }
}

/// A field's `transform`, if any.
fn transform_of(pattern: &Pattern) -> std::result::Result<Option<Transform>, String> {
    pattern
        .transform
        .as_deref()
        .map(Transform::from_name)
        .transpose()
        .map_err(|e| e.message().to_string())
}

/// Checks one pattern of a rule set of `kind` as compilation would (regex or pointer, group
/// number, transform).
pub fn check_pattern(kind: RuleKind, name: &str, pattern: &Pattern) -> Result<()> {
    match kind {
        RuleKind::Json => json::compile_field(name, pattern, "patterns").map(|_| ()),
        RuleKind::Table => table::check_field(name, pattern),
        _ => compile_field(name, pattern, "patterns").map(|_| ()),
    }
}

impl CompiledRules {
    /// Compiles and checks rules: regexes, pointers, group numbers, transforms, separators.
    pub fn compile(rules: &ParseRules) -> Result<CompiledRules> {
        if rules.kind == RuleKind::Json {
            return Self::compile_json(rules);
        }
        if rules.kind == RuleKind::Table {
            return Ok(CompiledRules {
                kind: RuleKind::Table,
                fields: Vec::new(),
                separator: compile_regex("\n").expect("newline regex"),
                arrays: Vec::new(),
                json_fields: Vec::new(),
                items: None,
                table: Some(table::Table::compile(rules)?),
            });
        }
        if rules.header.is_some() {
            return Err(Error::validation(
                "\"header\" only applies to rules of type 'table'".to_string(),
            ));
        }
        if rules.items.is_some() {
            return Err(Error::validation(
                "\"items\" only applies to rules of type 'json'".to_string(),
            ));
        }
        let fields = rules
            .patterns
            .iter()
            .map(|(name, p)| compile_field(name, p, "patterns"))
            .collect::<Result<Vec<_>>>()?;
        let declared = rules.patterns.len()
            + rules
                .array_patterns
                .values()
                .map(|a| a.object.len())
                .sum::<usize>();
        if declared > MAX_FIELDS {
            return Err(Error::validation(format!(
                "{declared} fields: rules may declare at most {MAX_FIELDS}"
            )));
        }
        let separator = rules.separator.as_deref().unwrap_or("\n");
        let separator = compile_regex(separator).map_err(|err| {
            Error::validation(format!("invalid separator regex {separator:?}: {err}"))
        })?;
        refuse_empty_match(&separator, "the separator")?;
        if rules.kind == RuleKind::Array {
            for field in fields.iter().filter(|f| !f.whole_body) {
                refuse_empty_match(
                    &field.regex,
                    &format!("the record pattern of '{}'", field.name),
                )?;
            }
        }
        let mut arrays = Vec::new();
        for (name, ap) in &rules.array_patterns {
            let index_src = ap.index.as_deref().unwrap_or(r"\d+");
            let index = Regex::new(&format!("^(?:{index_src})$")).map_err(|err| {
                Error::validation(format!(
                    "array_patterns '{name}': invalid index regex: {err}"
                ))
            })?;
            let within = format!("array_patterns '{name}'");
            let mut fields = Vec::new();
            for (field, pattern) in &ap.object {
                let compiled = compile_field(field, pattern, &within)?;
                refuse_empty_match(&compiled.regex, &format!("{within} field '{field}'"))?;
                if compiled.regex.captures_len() < 2 {
                    return Err(Error::validation(format!(
                        "{within} field '{field}': the regex needs a capture group for the item \
                         index (its first group)"
                    )));
                }
                fields.push(compiled);
            }
            arrays.push(ArrayField {
                name: name.clone(),
                index,
                fields,
            });
        }
        Ok(CompiledRules {
            kind: rules.kind,
            fields,
            separator,
            arrays,
            json_fields: Vec::new(),
            items: None,
            table: None,
        })
    }

    fn compile_json(rules: &ParseRules) -> Result<CompiledRules> {
        if rules.separator.is_some() || !rules.array_patterns.is_empty() || rules.header.is_some() {
            return Err(Error::validation(
                "rules of type 'json' take \"items\" and \"patterns\"; \"separator\" and \
                 \"array_patterns\" belong to the regex rule types"
                    .to_string(),
            ));
        }
        let json_fields = rules
            .patterns
            .iter()
            .map(|(name, p)| json::compile_field(name, p, "patterns"))
            .collect::<Result<Vec<_>>>()?;
        let items = rules
            .items
            .as_deref()
            .map(json::Pointer::parse)
            .transpose()
            .map_err(|e| Error::validation(format!("\"items\": {e}")))?;
        Ok(CompiledRules {
            kind: RuleKind::Json,
            fields: Vec::new(),
            separator: compile_regex("\n").expect("newline regex"),
            arrays: Vec::new(),
            json_fields,
            items,
            table: None,
        })
    }

    /// Applies the rules to raw output; `\r\n` ends a line like `\n` (see [`line_ends`]).
    pub fn apply(&self, output: &str) -> Result<Value> {
        let output = &*line_ends(output);
        match self.kind {
            RuleKind::Object => Ok(Value::Object(self.object(output, &mut Budget::default())?)),
            RuleKind::Properties => {
                let mut budget = Budget::default();
                let mut map = self.object(output, &mut budget)?;
                for array in &self.arrays {
                    map.insert(array.name.clone(), array.apply(output, &mut budget)?);
                }
                Ok(Value::Object(map))
            }
            RuleKind::Array => self.array(output),
            RuleKind::Table => match &self.table {
                Some(table) => table.apply(output),
                None => Err(Error::internal("table rules compiled without their table")),
            },
            RuleKind::Json => {
                let doc = json::document(output)?;
                match &self.items {
                    None => Ok(Value::Object(json::object(&self.json_fields, &doc)?)),
                    Some(items) => json::items(&doc, items)?
                        .into_iter()
                        .enumerate()
                        .map(|(n, item)| {
                            if n == MAX_RECORDS {
                                Budget {
                                    records: MAX_RECORDS,
                                    bytes: 0,
                                }
                                .record()?;
                            }
                            json::object(&self.json_fields, item)
                                .map(Value::Object)
                                .map_err(|e| e.with_detail("item", n))
                        })
                        .collect::<Result<Vec<_>>>()
                        .map(Value::Array),
                }
            }
        }
    }

    /// True when the rules produce a list.
    pub fn is_list(&self) -> bool {
        matches!(self.kind, RuleKind::Array | RuleKind::Table)
            || (self.kind == RuleKind::Json && self.items.is_some())
    }

    fn object(&self, output: &str, budget: &mut Budget) -> Result<Map<String, Value>> {
        let mut map = Map::new();
        for field in &self.fields {
            match field.extract(output, budget)? {
                Some(value) => {
                    map.insert(field.name.clone(), value);
                }
                None if field.optional => {}
                None => return Err(missing(field, output)),
            }
        }
        Ok(map)
    }

    fn array(&self, output: &str) -> Result<Value> {
        let mut items = Vec::new();
        let mut budget = Budget::default();
        for (n, record) in self.separator.split(output).enumerate() {
            if !self.fields.iter().any(|f| f.regex.is_match(record)) {
                continue;
            }
            budget.record()?;
            let mut item = Map::new();
            for field in &self.fields {
                match field.extract(record, &mut budget)? {
                    Some(value) => {
                        item.insert(field.name.clone(), value);
                    }
                    None if field.optional => {}
                    None => {
                        return Err(missing(field, record).with_detail("record", n + 1));
                    }
                }
            }
            items.push(Value::Object(item));
        }
        Ok(Value::Array(items))
    }

    /// The field names the rules produce, in order (for docs and `cpi show`).
    pub fn field_names(&self) -> Vec<&str> {
        self.fields
            .iter()
            .map(|f| f.name.as_str())
            .chain(self.arrays.iter().map(|a| a.name.as_str()))
            .chain(json::names(&self.json_fields))
            .chain(self.table.iter().flat_map(|t| t.names()))
            .collect()
    }
}

/// The output with every `\r\n` turned into `\n`, so that for every rule type `$` matches
/// before a Windows line end and no capture ends in `\r` (a lone `\r` is kept). JSON loses
/// nothing: a raw CR in JSON text is whitespace between tokens.
pub fn line_ends(output: &str) -> std::borrow::Cow<'_, str> {
    if output.contains("\r\n") {
        std::borrow::Cow::Owned(output.replace("\r\n", "\n"))
    } else {
        std::borrow::Cow::Borrowed(output)
    }
}

fn missing(field: &Field, output: &str) -> Error {
    let excerpt: String = output.chars().take(200).collect();
    Error::provider(format!(
        "required field '{}' not found in the output (regex {:?})",
        field.name,
        field.regex.as_str()
    ))
    .with_detail("field", field.name.as_str())
    .with_detail("output_excerpt", excerpt)
}

/// An item index: numbers sort numerically, before any text index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum IndexKey {
    Number(u128),
    Text(String),
}

impl ArrayField {
    fn apply(&self, output: &str, budget: &mut Budget) -> Result<Value> {
        let mut items: BTreeMap<IndexKey, Map<String, Value>> = BTreeMap::new();
        for field in &self.fields {
            for caps in field.regex.captures_iter(output) {
                budget.record()?;
                let Some(index) = caps.get(1).map(|m| m.as_str()) else {
                    continue;
                };
                if !self.index.is_match(index) {
                    continue;
                }
                let key = index
                    .parse::<u128>()
                    .map(IndexKey::Number)
                    .unwrap_or_else(|_| IndexKey::Text(index.to_string()));
                let item = items.entry(key).or_default();
                if item.contains_key(&field.name) {
                    continue; // the first occurrence of a field for an index wins
                }
                if let Some(value) = field.value_from(&caps, budget)? {
                    item.insert(field.name.clone(), value);
                }
            }
        }
        let mut list = Vec::with_capacity(items.len());
        for (key, mut item) in items {
            let mut ordered = Map::new();
            for field in &self.fields {
                match item.remove(&field.name) {
                    Some(value) => {
                        ordered.insert(field.name.clone(), value);
                    }
                    None if field.transform == Some(Transform::Boolean) => {
                        ordered.insert(field.name.clone(), Value::Bool(false));
                    }
                    None if field.optional => {}
                    None => {
                        let index = match key {
                            IndexKey::Number(n) => n.to_string(),
                            IndexKey::Text(t) => t,
                        };
                        return Err(Error::provider(format!(
                            "array '{}' item {index}: required field '{}' not found",
                            self.name, field.name
                        ))
                        .with_detail("field", field.name.as_str())
                        .with_detail("index", index));
                    }
                }
            }
            list.push(Value::Object(ordered));
        }
        Ok(Value::Array(list))
    }
}

impl Field {
    /// The field's value in `text`; `None` when it is absent.
    fn extract(&self, text: &str, budget: &mut Budget) -> Result<Option<Value>> {
        if self.whole_body {
            let body = text.trim();
            budget.take(body)?;
            return self.finish(body).map(Some);
        }
        match self.regex.captures(text) {
            Some(caps) => match self.value_from(&caps, budget)? {
                Some(value) => Ok(Some(value)),
                None if self.transform == Some(Transform::Boolean) => Ok(Some(Value::Bool(false))),
                None => Ok(None),
            },
            None if self.transform == Some(Transform::Boolean) => Ok(Some(Value::Bool(false))),
            None => Ok(None),
        }
    }

    fn value_from(&self, caps: &regex::Captures<'_>, budget: &mut Budget) -> Result<Option<Value>> {
        match caps.get(self.group) {
            Some(m) => {
                budget.take(m.as_str())?;
                self.finish(m.as_str()).map(Some)
            }
            None => Ok(None),
        }
    }

    fn finish(&self, text: &str) -> Result<Value> {
        let bad = |what: &str| {
            Error::provider(format!(
                "field '{}': expected {what}, got {:?}",
                self.name,
                text.chars().take(80).collect::<String>()
            ))
            .with_detail("field", self.name.as_str())
        };
        match self.transform {
            Some(Transform::Boolean) => Ok(Value::Bool(truthy(text, self.group))),
            Some(Transform::Number) => parse_number(text.trim()).ok_or_else(|| bad("a number")),
            Some(Transform::Json) => serde_json::from_str(text).map_err(|_| bad("JSON")),
            None if self.whole_body => match serde_json::from_str(text) {
                Ok(value) => Ok(value),
                // A JSON document that stops in the middle (a truncated body, an interrupted
                // CLI) is an error, not text to pass on.
                Err(err) if err.is_eof() && text.starts_with(['{', '[']) => Err(bad(
                    "a complete JSON document (the output ends in the middle of one)",
                )),
                Err(_) => Ok(Value::String(text.to_string())),
            },
            None => Ok(Value::String(text.to_string())),
        }
    }
}

/// The boolean transform of a matched text: known false words are false, anything else that
/// matched is true (a match without a group is simply "it matched").
fn truthy(text: &str, group: usize) -> bool {
    if group == 0 {
        return true;
    }
    !matches!(
        text.trim().to_ascii_lowercase().as_str(),
        "false"
            | "no"
            | "off"
            | "0"
            | ""
            | "unauthenticated"
            | "invalid"
            | "expired"
            | "none"
            | "null"
            | "stopped"
            | "disabled"
    )
}

/// Integers stay integers (`2048`, not `2048.0`); other numbers become floats.
fn parse_number(text: &str) -> Option<Value> {
    if let Ok(n) = text.parse::<i64>() {
        return Some(Value::from(n));
    }
    if let Ok(n) = text.parse::<u64>() {
        return Some(Value::from(n));
    }
    text.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Value::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(json: Value) -> CompiledRules {
        let rules: ParseRules = serde_json::from_value(json).unwrap();
        CompiledRules::compile(&rules).unwrap()
    }

    #[test]
    fn object_fields_keep_file_order_and_defaults() {
        let r = rules(json!({"type": "object", "patterns": {
            "status": {"regex": "Status:\\s+(\\w+)"},
            "id": {"regex": "^ID: (\\S+)$", "group": 1},
            "ip": {"regex": "IP: (\\S+)", "optional": true},
            "ok": {"regex": "done", "transform": "boolean"},
            "gone": {"regex": "deleted", "transform": "boolean"}
        }}));
        let v = r.apply("x\nID: wrk-1\nStatus: running\ndone\n").unwrap();
        assert_eq!(
            v,
            json!({"status": "running", "id": "wrk-1", "ok": true, "gone": false})
        );
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["status", "id", "ok", "gone"]);
    }

    #[test]
    fn missing_required_field_is_a_provider_error_naming_it() {
        let r = rules(json!({"type": "object", "patterns": {"id": {"regex": "ID: (\\S+)"}}}));
        let err = r.apply("nothing here").unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Provider);
        assert!(err.message().contains("'id'"));
    }

    #[test]
    fn transforms() {
        let r = rules(json!({"type": "object", "patterns": {
            "mem": {"regex": "Mem: (\\d+)", "transform": "number"},
            "load": {"regex": "Load: ([\\d.]+)", "transform": "number"},
            "auth": {"regex": "Auth: (\\w+)", "transform": "boolean"},
            "off": {"regex": "Power: (\\w+)", "transform": "boolean"},
            "tags": {"regex": "Tags: (.*)", "transform": "json"}
        }}));
        let v = r
            .apply("Mem: 2048\nLoad: 0.5\nAuth: authenticated\nPower: off\nTags: [\"a\",1]")
            .unwrap();
        assert_eq!(
            v,
            json!({"mem": 2048, "load": 0.5, "auth": true, "off": false, "tags": ["a", 1]})
        );
        assert_eq!(v["mem"].to_string(), "2048");
        let bad = r.apply("Mem: lots").unwrap_err();
        assert!(bad.message().contains("mem"));
    }

    #[test]
    fn array_splits_records_and_skips_unmatched_ones() {
        let r = rules(json!({"type": "array", "separator": "\\n", "patterns": {
            "id": {"regex": "\"id\":\\s*\"([^\"]+)\"", "group": 1},
            "name": {"regex": "\"name\":\\s*\"([^\"]+)\"", "group": 1}
        }}));
        let out =
            "[\n  {\"id\": \"a\", \"name\": \"one\"},\n\n  {\"id\": \"b\", \"name\": \"two\"}\n]\n";
        assert_eq!(
            r.apply(out).unwrap(),
            json!([{"id": "a", "name": "one"}, {"id": "b", "name": "two"}])
        );
        assert_eq!(r.apply("").unwrap(), json!([]));
    }

    #[test]
    fn array_patterns_group_items_by_index() {
        let r = rules(json!({"type": "properties", "patterns": {
            "id": {"regex": "\"id\":\\s*\"([^\"]+)\"", "group": 1}
        }, "array_patterns": {"disks": {"prefix": "Disk", "index": "(\\d+)", "object": {
            "id": {"regex": "Disk-(\\d+)-ID:\\s+([a-z0-9-]+)", "group": 2},
            "size": {"regex": "Disk-(\\d+)-Size:\\s+(\\d+)GB", "transform": "number"}
        }}}}));
        let out = "\"id\": \"w1\"\nDisk-10-ID: d-10\nDisk-2-ID: d-2\nDisk-2-Size: 20GB\nDisk-10-Size: 5GB\n";
        assert_eq!(
            r.apply(out).unwrap(),
            json!({"id": "w1", "disks": [{"id": "d-2", "size": 20}, {"id": "d-10", "size": 5}]})
        );
    }

    #[test]
    fn virtualbox_style_array_patterns() {
        let r = rules(
            json!({"type": "properties", "patterns": {}, "array_patterns": {"nics": {
                "prefix": "nic", "index": "\\d+", "object": {
                "type": {"regex": "^nic(\\d+)=\"([^\"]+)\"", "group": 2},
                "mac": {"regex": "^macaddress(\\d+)=\"([^\"]+)\"", "group": 2, "optional": true}
            }}}}),
        );
        let out = "name=\"vm\"\nnic1=\"nat\"\nmacaddress1=\"0800271\"\nnic2=\"bridged\"\n";
        assert_eq!(
            r.apply(out).unwrap(),
            json!({"nics": [{"type": "nat", "mac": "0800271"}, {"type": "bridged"}]})
        );
    }

    #[test]
    fn whole_body_capture_yields_json_however_formatted() {
        let r =
            rules(json!({"type": "object", "patterns": {"worker": {"regex": "(.*)", "group": 1}}}));
        let compact = r.apply("{\"id\":\"w\",\"n\":[1,2]}").unwrap();
        let pretty = r
            .apply("{\n  \"id\": \"w\",\n  \"n\": [\n    1,\n    2\n  ]\n}\n")
            .unwrap();
        assert_eq!(compact, json!({"worker": {"id": "w", "n": [1, 2]}}));
        assert_eq!(compact, pretty);
        assert_eq!(
            r.apply("plain text").unwrap(),
            json!({"worker": "plain text"})
        );
    }

    #[test]
    fn crlf_ends_a_line_for_every_rule_type() {
        let object = rules(json!({"type": "object", "patterns": {
            "name": {"regex": "Name:\\s+(.*)"},
            "state": {"regex": "^State: (.*)$"}
        }}));
        assert_eq!(
            object.apply("Name: win-01\r\nState: running\r\n").unwrap(),
            json!({"name": "win-01", "state": "running"})
        );
        let array = rules(json!({"type": "array", "separator": "\\n\\n", "patterns": {
            "id": {"regex": "^id=(.*)$"}
        }}));
        assert_eq!(
            array.apply("id=a\r\n\r\nid=b\r\n").unwrap(),
            json!([{"id": "a"}, {"id": "b"}])
        );
        let props = rules(
            json!({"type": "properties", "patterns": {}, "array_patterns": {
                "nics": {"object": {"type": {"regex": "^nic(\\d+)=(.*)$", "group": 2}}}
            }}),
        );
        assert_eq!(
            props.apply("nic1=nat\r\nnic2=bridged\r\n").unwrap(),
            json!({"nics": [{"type": "nat"}, {"type": "bridged"}]})
        );
        let whole = rules(json!({"type": "object", "patterns": {"out": {"regex": "(.*)"}}}));
        assert_eq!(
            whole.apply("line one\r\nline two\r\n").unwrap(),
            json!({"out": "line one\nline two"})
        );
        let json_rules = rules(json!({"type": "json", "patterns": {
            "name": {"pointer": "/name"}
        }}));
        assert_eq!(
            json_rules.apply("{\r\n  \"name\": \"w\"\r\n}\r\n").unwrap(),
            json!({"name": "w"})
        );
        let table = rules(json!({"type": "table", "patterns": {"name": {"column": "Name"}}}));
        assert_eq!(
            table.apply("Name\r\n----\r\nwin 01\r\n").unwrap(),
            json!([{"name": "win 01"}])
        );
    }

    #[test]
    fn compile_errors_name_the_problem() {
        let bad = |json: Value| {
            let rules: ParseRules = serde_json::from_value(json).unwrap();
            CompiledRules::compile(&rules)
                .unwrap_err()
                .message()
                .to_string()
        };
        assert!(
            bad(json!({"type": "object", "patterns": {"a": {"regex": "(x"}}}))
                .contains("invalid regex")
        );
        assert!(
            bad(json!({"type": "object", "patterns": {"a": {"regex": "(x)", "group": 2}}}))
                .contains("group 2")
        );
        assert!(
            bad(json!({"type": "object", "patterns": {"a": {"regex": "x", "transform": "upper"}}}))
                .contains("unknown transform")
        );
    }
}
