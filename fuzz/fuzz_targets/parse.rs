//! The parsers: for any rules that compile (every regex rule type and `json`), any output
//! gives a result or a `ProviderError`, never a panic or another category.
#![no_main]

use cpi::ErrorKind;
use cpi::parse::CompiledRules;
use cpi::provider::ParseRules;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value, json};

/// Regexes from the shipped providers, so fuzzing starts from realistic rules.
const KNOWN: &[&str] = &[
    "(.*)",
    "(?s)(.*)",
    "ID: (\\S+)",
    "^(\\S+)\\s+(\\S+)\\s+(\\S+)",
    "Status: (\\w+)",
    "Disk-(\\d+)-ID: (\\S+)",
    "Disk-(\\d+)-Size: (\\d+)GB",
    "nic(\\d+)=\"([^\"]*)\"",
    "macaddress(\\d+)=\"([^\"]*)\"",
    "\"id\":\\s*(\\d+)",
    "\"hostname\":\\s*\"([^\"]+)\"",
    "authenticated",
    "^State:\\s+(.+)$",
    "(\\d+)",
    "version ([\\d.]+)",
    "^\\s*(\\d+)\\s+(\\S+)\\s+(.+?)\\s*$",
];

#[derive(Debug, Arbitrary)]
enum Regex {
    Known(u8),
    Custom(String),
}

#[derive(Debug, Arbitrary)]
struct Pattern {
    regex: Option<Regex>,
    pointer: Option<String>,
    group: Option<u8>,
    optional: bool,
    transform: u8,
}

#[derive(Debug, Arbitrary)]
struct Array {
    name: String,
    index: Option<String>,
    object: Vec<(String, Pattern)>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    kind: u8,
    patterns: Vec<(String, Pattern)>,
    separator: Option<String>,
    arrays: Vec<Array>,
    items: Option<String>,
    output: String,
}

fn pattern(p: &Pattern) -> Value {
    let mut out = Map::new();
    match &p.regex {
        Some(Regex::Known(i)) => {
            out.insert("regex".into(), json!(KNOWN[usize::from(*i) % KNOWN.len()]));
        }
        Some(Regex::Custom(r)) => {
            out.insert("regex".into(), json!(r));
        }
        None => {}
    }
    if let Some(pointer) = &p.pointer {
        out.insert("pointer".into(), json!(pointer));
    }
    if let Some(group) = p.group {
        out.insert("group".into(), json!(group % 8));
    }
    out.insert("optional".into(), json!(p.optional));
    let transform = match p.transform % 6 {
        0 => None,
        1 => Some("boolean"),
        2 => Some("number"),
        3 => Some("json"),
        4 => Some("int"),
        _ => Some("bogus"),
    };
    if let Some(t) = transform {
        out.insert("transform".into(), json!(t));
    }
    Value::Object(out)
}

fn patterns(list: &[(String, Pattern)]) -> Value {
    Value::Object(list.iter().map(|(k, p)| (k.clone(), pattern(p))).collect())
}

fuzz_target!(|input: Input| {
    let kind = ["object", "array", "properties", "json"][usize::from(input.kind % 4)];
    let mut rules = Map::new();
    rules.insert("type".into(), json!(kind));
    rules.insert("patterns".into(), patterns(&input.patterns));
    if let Some(separator) = &input.separator {
        rules.insert("separator".into(), json!(separator));
    }
    if !input.arrays.is_empty() {
        let arrays: Map<String, Value> = input
            .arrays
            .iter()
            .map(|a| {
                let mut v = Map::new();
                if let Some(index) = &a.index {
                    v.insert("index".into(), json!(index));
                }
                v.insert("object".into(), patterns(&a.object));
                (a.name.clone(), Value::Object(v))
            })
            .collect();
        rules.insert("array_patterns".into(), Value::Object(arrays));
    }
    if let Some(items) = &input.items {
        rules.insert("items".into(), json!(items));
    }
    let Ok(rules) = serde_json::from_value::<ParseRules>(Value::Object(rules)) else {
        return;
    };
    let Ok(compiled) = CompiledRules::compile(&rules) else {
        return;
    };
    if let Err(err) = compiled.apply(&input.output) {
        assert_eq!(err.kind(), ErrorKind::Provider, "{err}");
    }
});
