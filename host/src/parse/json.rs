//! `"type": "json"` parse rules (an extension): fields read by JSON Pointer instead of regex.
//!
//! Semantics (see the README's provider file reference):
//! - the output is read as a stream of JSON values: no value is `null`, one value is itself,
//!   several values (JSON lines, as `docker ps --format '{{json .}}'` prints) form a list;
//! - `items` points at the list of results (`""` is the whole output); `null` there is an
//!   empty list, anything else that is not a list is an error; without `items` the result
//!   is one object read from the whole output;
//! - a pointer segment `*` takes every element of a list (or every value of an object), so
//!   `/Reservations/*/Instances` flattens nested lists and a field pointer with `*` yields a list;
//! - a segment `[key=value]` keeps the elements of a list whose member `key` is `value`:
//!   `/Tags/[Key=Name]/Value` (without a `*` the first match is the field's value);
//! - a field's value is kept as JSON (numbers stay numbers); `regex` narrows the text of a
//!   string or number; `transform` converts; a missing or `null` field is an error unless
//!   `optional` (then omitted) or `boolean` (then `false`).

use regex::Regex;
use serde_json::{Map, Value};

use super::rules::Pattern;
use super::{Transform, parse_number, regex_and_group, transform_of, truthy};
use crate::error::{Error, Result};

/// A parsed JSON Pointer, with the `*` and `[key=value]` extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    text: String,
    segments: Vec<Segment>,
}

/// One step of a [`Pointer`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// An object member or a list index (RFC 6901).
    Key(String),
    /// `*`: every element of a list, every value of an object.
    Any,
    /// `[key=value]`: the elements of a list whose member `key` is `value` (a string, or a
    /// number or boolean written the same way): `/Tags/[Key=Name]/Value` is AWS's Name tag.
    Filter { key: String, value: String },
}

impl Pointer {
    /// Parses an RFC 6901 pointer (`""` or `/a/b~1c`), with `*` as a wildcard segment and
    /// `[key=value]` as a filter segment.
    pub fn parse(text: &str) -> std::result::Result<Pointer, String> {
        if text.is_empty() {
            return Ok(Pointer {
                text: String::new(),
                segments: Vec::new(),
            });
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(format!(
                "JSON Pointer {text:?} must be empty or start with '/' (for example \"/{text}\")"
            ));
        };
        let mut segments = Vec::new();
        for raw in rest.split('/') {
            if raw == "*" {
                segments.push(Segment::Any);
                continue;
            }
            if let Some(inner) = raw.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                let Some((key, value)) = inner.split_once('=') else {
                    return Err(format!(
                        "JSON Pointer {text:?}: filter segment {raw:?} must be [key=value]"
                    ));
                };
                if key.is_empty() {
                    return Err(format!(
                        "JSON Pointer {text:?}: filter segment {raw:?} names no key"
                    ));
                }
                segments.push(Segment::Filter {
                    key: unescape(key, text)?,
                    value: unescape(value, text)?,
                });
                continue;
            }
            segments.push(Segment::Key(unescape(raw, text)?));
        }
        Ok(Pointer {
            text: text.to_string(),
            segments,
        })
    }

    /// True when the pointer has a `*` segment (so it yields a list). A filter alone yields
    /// its first match.
    pub fn is_wildcard(&self) -> bool {
        self.segments.contains(&Segment::Any)
    }

    /// True when the pointer has a `[key=value]` segment.
    pub fn has_filter(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Filter { .. }))
    }

    /// The pointer as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Every value the pointer reaches in `root` (one at most without wildcards).
    pub fn resolve<'v>(&self, root: &'v Value) -> Vec<&'v Value> {
        let mut current = vec![root];
        for segment in &self.segments {
            let mut next = Vec::new();
            for value in current {
                match (segment, value) {
                    (Segment::Any, Value::Array(items)) => next.extend(items.iter()),
                    (Segment::Any, Value::Object(map)) => next.extend(map.values()),
                    (Segment::Filter { key, value }, Value::Array(items)) => next.extend(
                        items
                            .iter()
                            .filter(|item| item.get(key).is_some_and(|v| same_text(v, value))),
                    ),
                    (Segment::Key(key), Value::Object(map)) => next.extend(map.get(key)),
                    // RFC 6901: array indices are decimal without leading zeros.
                    (Segment::Key(key), Value::Array(items))
                        if key == "0" || (!key.starts_with('0') && !key.is_empty()) =>
                    {
                        next.extend(key.parse::<usize>().ok().and_then(|i| items.get(i)));
                    }
                    _ => {}
                }
            }
            current = next;
        }
        current
    }

    /// The single value at the pointer (`None` when absent); wildcards collect a list.
    fn lookup(&self, root: &Value) -> Option<Value> {
        let found = self.resolve(root);
        if self.is_wildcard() {
            return Some(Value::Array(found.into_iter().cloned().collect()));
        }
        found.into_iter().next().cloned()
    }
}

/// The next page's value from a paged answer (`paginate.next`): the field at its pointer in
/// the JSON output, narrowed by its regex. `None` when absent, `null`, `false` or empty: the
/// last page.
pub fn next_page(pattern: &Pattern, output: &str) -> Result<Option<String>> {
    let field = compile_field("next", pattern, "paginate")?;
    let doc = document(output)?;
    Ok(match field.extract(&doc)? {
        None | Some(Value::Bool(false)) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

/// Decodes a pointer segment's `~0` (`~`) and `~1` (`/`) escapes.
fn unescape(raw: &str, text: &str) -> std::result::Result<String, String> {
    let mut segment = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '~' {
            segment.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => segment.push('~'),
            Some('1') => segment.push('/'),
            _ => {
                return Err(format!(
                    "JSON Pointer {text:?}: '~' must be followed by 0 or 1 (~0 is '~', ~1 is '/')"
                ));
            }
        }
    }
    Ok(segment)
}

/// Whether a JSON scalar reads as `text` (a filter's value is written as text).
fn same_text(value: &Value, text: &str) -> bool {
    match value {
        Value::String(s) => s == text,
        Value::Number(n) => n.to_string() == text,
        Value::Bool(b) => b.to_string() == text,
        _ => false,
    }
}

/// One compiled `json` field.
#[derive(Debug, Clone)]
pub(super) struct JsonField {
    name: String,
    pointer: Pointer,
    regex: Option<(Regex, usize)>,
    optional: bool,
    transform: Option<Transform>,
}

/// Compiles one field of a `json` rule set; `within` names the rule set in errors.
pub(super) fn compile_field(name: &str, pattern: &Pattern, within: &str) -> Result<JsonField> {
    let at = |what: String| {
        Error::validation(format!("{within} field '{name}': {what}")).with_detail("field", name)
    };
    if pattern.column.is_some() {
        return Err(at(
            "\"column\" fields only apply to rules of type 'table'; this rule set reads JSON"
                .into(),
        ));
    }
    let Some(pointer) = &pattern.pointer else {
        return Err(at(
            "rules of type 'json' read fields by JSON Pointer: add \"pointer\" (e.g. \"/id\")"
                .into(),
        ));
    };
    let pointer = Pointer::parse(pointer).map_err(at)?;
    let regex = pattern
        .regex
        .as_deref()
        .map(|source| regex_and_group(source, pattern.group))
        .transpose()
        .map_err(at)?;
    let transform = transform_of(pattern).map_err(at)?;
    Ok(JsonField {
        name: name.to_string(),
        pointer,
        regex,
        optional: pattern.optional,
        transform,
    })
}

/// Reads the output as JSON: no value is `null`, one value is itself, several form a list.
pub(super) fn document(output: &str) -> Result<Value> {
    let mut values = Vec::new();
    let stream = serde_json::Deserializer::from_str(output).into_iter::<Value>();
    for value in stream {
        match value {
            Ok(value) => values.push(value),
            Err(err) => {
                let excerpt: String = output.chars().take(200).collect();
                return Err(Error::provider(format!(
                    "the output is not JSON (line {}, column {}: {err})",
                    err.line(),
                    err.column()
                ))
                .with_detail("output_excerpt", excerpt));
            }
        }
    }
    Ok(match values.len() {
        0 => Value::Null,
        1 => values.pop().expect("one value"),
        _ => Value::Array(values),
    })
}

/// The list of items `items` points at.
pub(super) fn items<'v>(doc: &'v Value, items: &Pointer) -> Result<Vec<&'v Value>> {
    let found = items.resolve(doc);
    // With `*` or a filter the pointer selects many values: every one is an item (a list
    // reached contributes its elements).
    if items.is_wildcard() || items.has_filter() {
        // Flattening: every list reached contributes its elements.
        let mut out = Vec::new();
        for value in found {
            match value {
                Value::Array(list) => out.extend(list.iter()),
                Value::Null => {}
                other => out.push(other),
            }
        }
        return Ok(out);
    }
    match found.first() {
        Some(Value::Array(list)) => Ok(list.iter().collect()),
        Some(Value::Null) => Ok(Vec::new()),
        None if doc.is_null() => Ok(Vec::new()),
        None => Err(Error::provider(format!(
            "the output has no list at {:?} (the rules' \"items\" pointer)",
            items.as_str()
        ))
        .with_detail("pointer", items.as_str())),
        Some(other) => Err(Error::provider(format!(
            "the output has {} at {:?} where the rules' \"items\" pointer expects a list",
            cpi_contract::json_kind(other),
            items.as_str()
        ))
        .with_detail("pointer", items.as_str())),
    }
}

/// Builds one result object from `item`.
pub(super) fn object(fields: &[JsonField], item: &Value) -> Result<Map<String, Value>> {
    let mut map = Map::new();
    for field in fields {
        match field.extract(item)? {
            Some(value) => {
                map.insert(field.name.clone(), value);
            }
            None if field.transform == Some(Transform::Boolean) => {
                map.insert(field.name.clone(), Value::Bool(false));
            }
            None if field.optional => {}
            None => {
                return Err(Error::provider(format!(
                    "required field '{}' not found in the output (pointer {:?})",
                    field.name,
                    field.pointer.as_str()
                ))
                .with_detail("field", field.name.as_str())
                .with_detail("pointer", field.pointer.as_str()));
            }
        }
    }
    Ok(map)
}

/// The field names, in order.
pub(super) fn names(fields: &[JsonField]) -> impl Iterator<Item = &str> {
    fields.iter().map(|f| f.name.as_str())
}

impl JsonField {
    fn extract(&self, item: &Value) -> Result<Option<Value>> {
        let value = match self.pointer.lookup(item) {
            None | Some(Value::Null) => return Ok(None),
            Some(value) => value,
        };
        let value = match &self.regex {
            None => value,
            Some((regex, group)) => {
                let text = match &value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => other.to_string(),
                };
                match regex.captures(&text).and_then(|c| c.get(*group)) {
                    Some(m) => Value::String(m.as_str().to_string()),
                    None => return Ok(None),
                }
            }
        };
        self.convert(value).map(Some)
    }

    fn convert(&self, value: Value) -> Result<Value> {
        let bad = |what: &str, got: &Value| {
            let shown: String = got.to_string().chars().take(80).collect();
            Error::provider(format!(
                "field '{}': expected {what}, got {shown}",
                self.name
            ))
            .with_detail("field", self.name.as_str())
        };
        match self.transform {
            None => Ok(value),
            Some(Transform::Number) => match &value {
                Value::Number(_) => Ok(value),
                Value::String(s) => parse_number(s.trim()).ok_or_else(|| bad("a number", &value)),
                _ => Err(bad("a number", &value)),
            },
            Some(Transform::Boolean) => Ok(Value::Bool(match &value {
                Value::Bool(b) => *b,
                Value::String(s) => truthy(s, 1),
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                Value::Null => false,
            })),
            Some(Transform::Json) => match &value {
                Value::String(s) => serde_json::from_str(s).map_err(|_| bad("JSON", &value)),
                _ => Ok(value),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::CompiledRules;
    use crate::parse::ParseRules;
    use serde_json::json;

    fn rules(json: Value) -> CompiledRules {
        let rules: ParseRules = serde_json::from_value(json).unwrap();
        CompiledRules::compile(&rules).unwrap()
    }

    fn compile_error(json: Value) -> String {
        let rules: ParseRules = serde_json::from_value(json).unwrap();
        CompiledRules::compile(&rules)
            .unwrap_err()
            .message()
            .to_string()
    }

    #[test]
    fn pointers_follow_rfc_6901_escapes_and_indices() {
        let doc = json!({"a/b": {"m~n": [10, 20]}, "01": 1});
        let p = Pointer::parse("/a~1b/m~0n/1").unwrap();
        assert_eq!(p.resolve(&doc), vec![&json!(20)]);
        assert!(
            Pointer::parse("/a~1b/m~0n/01")
                .unwrap()
                .resolve(&doc)
                .is_empty()
        );
        assert_eq!(Pointer::parse("").unwrap().resolve(&doc), vec![&doc]);
        assert!(Pointer::parse("id").unwrap_err().contains("start with '/'"));
        assert!(Pointer::parse("/a~2").unwrap_err().contains("~0"));
    }

    #[test]
    fn list_results_keep_json_types_and_order() {
        let r = rules(json!({"type": "json", "items": "/servers", "patterns": {
            "id": {"pointer": "/id"},
            "name": {"pointer": "/name"},
            "memory": {"pointer": "/server_type/memory", "transform": "number"},
            "ip": {"pointer": "/public_net/ipv4/ip", "optional": true},
            "locked": {"pointer": "/locked", "transform": "boolean"}
        }}));
        let out = r#"{"servers": [
            {"id": 42, "name": "a", "server_type": {"memory": 4.0}, "public_net": {"ipv4": {"ip": "1.2.3.4"}}, "locked": false},
            {"id": 43, "name": "b", "server_type": {"memory": "2"}, "public_net": {"ipv4": null}}
        ]}"#;
        assert_eq!(
            r.apply(out).unwrap(),
            json!([
                {"id": 42, "name": "a", "memory": 4.0, "ip": "1.2.3.4", "locked": false},
                {"id": 43, "name": "b", "memory": 2, "locked": false}
            ])
        );
    }

    #[test]
    fn wildcards_flatten_nested_lists() {
        let r = rules(
            json!({"type": "json", "items": "/Reservations/*/Instances", "patterns": {
                "id": {"pointer": "/InstanceId"},
                "groups": {"pointer": "/SecurityGroups/*/GroupId"}
            }}),
        );
        let out = json!({"Reservations": [
            {"Instances": [{"InstanceId": "i-1", "SecurityGroups": [{"GroupId": "sg-1"}, {"GroupId": "sg-2"}]}]},
            {"Instances": [{"InstanceId": "i-2", "SecurityGroups": []}, {"InstanceId": "i-3"}]}
        ]});
        assert_eq!(
            r.apply(&out.to_string()).unwrap(),
            json!([
                {"id": "i-1", "groups": ["sg-1", "sg-2"]},
                {"id": "i-2", "groups": []},
                {"id": "i-3", "groups": []}
            ])
        );
    }

    #[test]
    fn filters_pick_list_elements_by_a_member() {
        let r = rules(json!({"type": "json", "items": "/Instances", "patterns": {
            "id": {"pointer": "/InstanceId"},
            "name": {"pointer": "/Tags/[Key=Name]/Value", "optional": true},
            "envs": {"pointer": "/Tags/[Key=env]/Value/*"},
            "port": {"pointer": "/Ports/[Number=22]/Name", "optional": true},
            "slashed": {"pointer": "/Tags/[Key=a~1b]/Value", "optional": true}
        }}));
        let out = json!({"Instances": [
            {"InstanceId": "i-1", "Tags": [{"Key": "env", "Value": ["prod"]},
                {"Key": "Name", "Value": "web-1"}, {"Key": "Name", "Value": "second"},
                {"Key": "a/b", "Value": "slash"}],
             "Ports": [{"Number": 22, "Name": "ssh"}]},
            {"InstanceId": "i-2", "Tags": [{"Key": "env", "Value": ["dev"]}]},
            {"InstanceId": "i-3"}
        ]});
        assert_eq!(
            r.apply(&out.to_string()).unwrap(),
            json!([
                // Without `*` a filter gives its first match; numbers match as written.
                {"id": "i-1", "name": "web-1", "envs": ["prod"], "port": "ssh", "slashed": "slash"},
                {"id": "i-2", "envs": ["dev"]},
                {"id": "i-3", "envs": []}
            ])
        );
        for bad in ["/Tags/[Key]/Value", "/Tags/[=Name]/Value"] {
            let err = Pointer::parse(bad).unwrap_err();
            assert!(err.contains("filter segment"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_filter_in_items_keeps_every_match() {
        let r = rules(json!({"type": "json", "items": "/Volumes/[State=in-use]",
            "patterns": {"id": {"pointer": "/VolumeId"}}}));
        let out = json!({"Volumes": [
            {"VolumeId": "v-1", "State": "in-use"}, {"VolumeId": "v-2", "State": "available"},
            {"VolumeId": "v-3", "State": "in-use"}]});
        assert_eq!(
            r.apply(&out.to_string()).unwrap(),
            json!([{"id": "v-1"}, {"id": "v-3"}])
        );
    }

    #[test]
    fn json_lines_and_empty_output_are_lists() {
        let r = rules(json!({"type": "json", "items": "", "patterns": {
            "id": {"pointer": "/ID"}, "state": {"pointer": "/State"}
        }}));
        let out = "{\"ID\":\"c1\",\"State\":\"running\"}\n{\"ID\":\"c2\",\"State\":\"exited\"}\n";
        assert_eq!(
            r.apply(out).unwrap(),
            json!([{"id": "c1", "state": "running"}, {"id": "c2", "state": "exited"}])
        );
        assert_eq!(r.apply("").unwrap(), json!([]));
        assert_eq!(r.apply("  \n").unwrap(), json!([]));
    }

    #[test]
    fn regex_narrows_a_pointed_string() {
        let r = rules(json!({"type": "json", "patterns": {
            "zone": {"pointer": "/zone", "regex": "zones/([^/]+)$"},
            "type": {"pointer": "/machineType", "regex": "[^/]+$"}
        }}));
        let out = r#"{"zone": "https://x/projects/p/zones/europe-west1-b", "machineType": "https://x/machineTypes/e2-small"}"#;
        assert_eq!(
            r.apply(out).unwrap(),
            json!({"zone": "europe-west1-b", "type": "e2-small"})
        );
    }

    #[test]
    fn errors_name_the_field_the_pointer_and_the_problem() {
        let r = rules(json!({"type": "json", "items": "/servers", "patterns": {
            "id": {"pointer": "/id"}
        }}));
        let err = r.apply(r#"{"servers": [{"name": "x"}]}"#).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Provider);
        assert!(err.message().contains("'id'") && err.message().contains("/id"));
        let err = r.apply(r#"{"server": {}}"#).unwrap_err();
        assert!(err.message().contains("no list at \"/servers\""), "{err}");
        let err = r.apply(r#"{"servers": {"id": 1}}"#).unwrap_err();
        assert!(err.message().contains("an object"), "{err}");
        let err = r.apply("Error: not logged in").unwrap_err();
        assert!(err.message().contains("not JSON"), "{err}");
        let n = rules(json!({"type": "json", "patterns": {
            "n": {"pointer": "/n", "transform": "number"}
        }}));
        assert!(
            n.apply(r#"{"n": "lots"}"#)
                .unwrap_err()
                .message()
                .contains("'n'")
        );
    }

    #[test]
    fn compile_errors_name_what_is_wrong() {
        assert!(
            compile_error(json!({"type": "json", "patterns": {"id": {"regex": "(x)"}}}))
                .contains("add \"pointer\"")
        );
        assert!(
            compile_error(json!({"type": "json", "patterns": {"id": {"pointer": "id"}}}))
                .contains("start with '/'")
        );
        assert!(
            compile_error(json!({"type": "json", "items": "servers", "patterns": {}}))
                .contains("items")
        );
        assert!(
            compile_error(json!({"type": "object", "patterns": {"id": {"pointer": "/id"}}}))
                .contains("only apply to rules of type 'json'")
        );
    }
}
