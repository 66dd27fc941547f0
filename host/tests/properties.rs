//! Property tests (proptest) of cpi's input boundaries:
//! - template substitution never changes structure: a value is one argv token (and one literal
//!   string inside a `sh -c` script, checked by running `sh`), one URL path segment or query
//!   value that percent-decodes back to itself, one JSON string in a body;
//! - the parsers never panic, whatever the output, for any rules that compile (the regex rule
//!   types and `json`), and JSON cut short is never passed on as text;
//! - loading a provider file never panics, whatever the bytes.
//!
//! Case counts stay modest (at most 256, fewer where each case starts processes) so the suite
//! stays fast; `PROPTEST_CASES=N` raises them for a longer hunt. The cargo-fuzz targets in
//! `fuzz/` explore the same boundaries with coverage guidance.

use std::path::{Path, PathBuf};

use cpi::parse::CompiledRules;
use cpi::parse::stream::{JsonList, write_saved};
use cpi::provider::{ParseRules, Provider};
use cpi::status::{StatusMapper, Vocabulary};
use cpi::template::{self, BodyKind, Values};
use cpi::{Error, ErrorKind};
use cpi_authoring::validate;
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::{Value, json};

/// `cases` cases (or `PROPTEST_CASES`), with failing inputs saved beside this file in
/// `properties.regressions` and replayed first on later runs.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

fn values(pairs: &[(&str, &str)]) -> Values {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Parameter values: anything, printable ASCII, and strings made of shell, URL and JSON
/// metacharacters (where the bugs would be).
fn any_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,24}",
        "[$`'\"\\\\(){}\\[\\];|&<>*?!#~ \t\n%/.:=+@,-]{0,16}",
        Just(String::new()),
        Just("..".to_string()),
        Just("{other}".to_string()),
    ]
}

/// A command word that is never a shell's name nor a flag.
fn plain_word() -> impl Strategy<Value = String> {
    "x[a-z0-9._=:,]{0,7}"
}

// ---------------------------------------------------------------------------------------------
// Commands

proptest! {
    #![proptest_config(config(256))]

    /// In any template, a value fills exactly its own word: the same number of tokens as with
    /// a plain value, the other words unchanged, its word exactly prefix + value + suffix.
    #[test]
    fn a_value_is_exactly_one_argv_token(
        words in prop::collection::vec(plain_word(), 1..6),
        at in any::<prop::sample::Index>(),
        prefix in "[a-z=.-]{0,4}",
        suffix in "[a-z=.]{0,4}",
        quoting in 0..3usize,
        value in any_value(),
    ) {
        let k = at.index(words.len()) + 1;
        let mut template_words: Vec<String> = vec!["cli".into()];
        template_words.extend(words.iter().cloned());
        template_words[k] = match quoting {
            0 => format!("{prefix}{{v}}{suffix}"),
            1 => format!("'{prefix}{{v}}{suffix}'"),
            _ => format!("\"{prefix}{{v}}{suffix}\""),
        };
        let template = template_words.join(" ");
        if prefix.is_empty() && value.starts_with('-') {
            // A value that would begin its word with '-' is refused unless the parameter
            // allows it: it would otherwise be read as an option.
            let refused = template::command_argv(&template, &values(&[("v", &value)]));
            prop_assert!(
                refused.as_ref().is_err_and(|e| e.to_string().contains("must not start with '-'")),
                "{}: {:?}",
                template,
                refused
            );
            return Ok(());
        }
        let argv = template::command_argv(&template, &values(&[("v", &value)]))
            .map_err(|e| TestCaseError::fail(format!("{template}: {e}")))?;
        let plain = template::command_argv(&template, &values(&[("v", "x")]))
            .map_err(|e| TestCaseError::fail(format!("{template}: {e}")))?;
        prop_assert_eq!(argv.len(), plain.len(), "{}", template);
        prop_assert_eq!(argv.len(), template_words.len());
        for (i, (got, word)) in argv.iter().zip(&plain).enumerate() {
            if i == k {
                prop_assert_eq!(got, &format!("{prefix}{value}{suffix}"));
            } else {
                prop_assert_eq!(got, word);
            }
        }
    }

    /// Arbitrary templates and values never make substitution panic.
    #[test]
    fn command_substitution_never_panics(template in any::<String>(), value in any_value()) {
        let vals: Values = template::placeholders(&template)
            .map(|n| (n.to_string(), value.clone()))
            .collect();
        let _ = template::command_argv(&template, &vals);
        let _ = template::check_command(&template);
    }
}

/// Runs `argv` (no shell of ours: the template's own `sh`) and returns its stdout.
fn run_argv(argv: &[String]) -> Vec<u8> {
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the command runs");
    assert!(out.status.success(), "{argv:?}: {out:?}");
    out.stdout
}

proptest! {
    // Each case starts a few `sh` processes.
    #![proptest_config(config(64))]

    /// Inside a `sh -c` script, in every context cpi accepts, the shell sees the value as one
    /// literal string: it prints it back unchanged (command substitution drops trailing
    /// newlines, as it always does).
    #[test]
    fn a_value_stays_one_literal_string_inside_a_shell_script(
        // A value that begins a word with `-` is refused unless declared (its own test lives
        // in template.rs); every other value must come through literally.
        value in any_value()
            .prop_filter("argv cannot carry NUL", |v| !v.contains('\0'))
            .prop_filter("a leading '-' is refused", |v| !v.starts_with('-')),
    ) {
        let trimmed = value.trim_end_matches('\n');
        for (template, want) in [
            ("sh -c 'printf %s {v}'", value.as_str()),
            ("sh -c 'printf %s \"{v}\"'", value.as_str()),
            ("sh -c \"printf %s '{v}'\"", value.as_str()),
            ("sh -ec 'printf %s {v}; exit 0'", value.as_str()),
            ("env sh -c 'printf %s {v}'", value.as_str()),
            ("sh -c 'printf %s \"$(printf %s {v})\"'", trimmed),
            ("sh -c 'x=`printf %s {v}`; printf %s \"$x\"'", trimmed),
        ] {
            let argv = template::command_argv(template, &values(&[("v", &value)]))
                .map_err(|e| TestCaseError::fail(format!("{template}: {e}")))?;
            prop_assert_eq!(argv.len(), template::command_argv(template, &values(&[("v", "x")])).unwrap().len());
            let printed = run_argv(&argv);
            prop_assert_eq!(
                String::from_utf8_lossy(&printed),
                want,
                "{} -> {:?}",
                template,
                argv
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// URLs, headers, bodies

const BASE: &str = "http://127.0.0.1:8787/api/v2.0";

proptest! {
    #![proptest_config(config(256))]

    /// A path value is one segment that percent-decodes to itself; a query value is one
    /// parameter; neither adds segments, parameters or a fragment. Only an empty value and one
    /// with a "." or ".." part between `/` or `\` (a climb on a server that decodes first)
    /// are refused.
    #[test]
    fn url_values_round_trip_and_never_add_segments_or_parameters(
        id in any_value(),
        q in any_value(),
    ) {
        let vals = values(&[("api_url", BASE), ("id", &id), ("q", &q)]);
        let result = template::url("{api_url}/pool/id/{id}/start?x={q}&y=1", &vals);
        if id.is_empty() || id.split(['/', '\\']).any(|part| part == "." || part == "..") {
            let err = result.expect_err("a value that is not a segment is refused");
            prop_assert_eq!(err.kind(), ErrorKind::Validation);
            return Ok(());
        }
        let text = result.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let url = url::Url::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(url.host_str(), Some("127.0.0.1"));
        prop_assert_eq!(url.port(), Some(8787));
        prop_assert_eq!(url.fragment(), None);
        let segments: Vec<&str> = url.path_segments().expect("a base URL").collect();
        prop_assert_eq!(segments.len(), 6, "{}", text);
        prop_assert_eq!(&segments[..4], &["api", "v2.0", "pool", "id"]);
        prop_assert_eq!(segments[5], "start");
        let decoded = percent_decode_str(segments[4]).decode_utf8().expect("UTF-8");
        prop_assert_eq!(decoded.as_ref(), id.as_str());
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        prop_assert_eq!(pairs, vec![("x".to_string(), q.clone()), ("y".to_string(), "1".to_string())]);
    }

    /// Whatever the base URL value, the request goes to that host or nowhere.
    #[test]
    fn a_base_url_value_is_checked_and_keeps_its_host(base in prop_oneof![
        any::<String>(),
        "(http|https|file|ftp)://[a-z0-9.:@/?#%\\[\\]-]{0,20}",
    ], id in "[a-z0-9]{1,6}") {
        let vals = values(&[("api_url", &base), ("id", &id)]);
        if let Ok(text) = template::url("{api_url}/x/{id}", &vals) {
            let url = url::Url::parse(&text).expect("a checked URL parses");
            let given = url::Url::parse(&base).expect("a checked base parses");
            prop_assert!(matches!(url.scheme(), "http" | "https"));
            prop_assert_eq!(url.host_str(), given.host_str());
            prop_assert_eq!(url.port(), given.port());
            prop_assert_eq!(url.query(), None);
            prop_assert_eq!(url.path_segments().and_then(|mut s| s.next_back()), Some(id.as_str()));
        }
    }

    /// Header values are refused exactly when they could split the header.
    #[test]
    fn header_values_never_split_a_header(value in any_value()) {
        let result = template::header("Bearer {v}", &values(&[("v", &value)]));
        if value.contains(['\r', '\n', '\0']) {
            prop_assert!(result.is_err());
        } else {
            prop_assert_eq!(result.ok(), Some(format!("Bearer {value}")));
        }
    }

    /// In a JSON string literal a value stays one JSON string, whatever it holds.
    #[test]
    fn json_bodies_stay_valid_json_with_the_value_as_a_string(value in any_value()) {
        let body = template::body(
            r#"{"name":"{v}","n":1,"s":"a{v}b"}"#,
            &values(&[("v", &value)]),
            BodyKind::Json,
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed: Value = serde_json::from_str(&body).map_err(|e| TestCaseError::fail(format!("{e}: {body}")))?;
        let object = parsed.as_object().expect("an object");
        prop_assert_eq!(object.len(), 3);
        prop_assert_eq!(&object["name"], &Value::String(value.clone()));
        prop_assert_eq!(&object["n"], &json!(1));
        prop_assert_eq!(&object["s"], &Value::String(format!("a{value}b")));
    }

    /// In a bare position a value must be exactly one JSON value, and then it is that value.
    #[test]
    fn bare_body_values_are_one_json_value_or_refused(
        doc in json_value(),
        pretty in any::<bool>(),
        junk in any_value(),
    ) {
        let text = if pretty {
            serde_json::to_string_pretty(&doc).expect("serializes")
        } else {
            doc.to_string()
        };
        let body = template::body(r#"{"disks":{d},"n":1}"#, &values(&[("d", &text)]), BodyKind::Json)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let parsed: Value = serde_json::from_str(&body).expect("valid JSON");
        prop_assert_eq!(parsed.as_object().map(|o| o.len()), Some(2));
        prop_assert_eq!(&parsed["disks"], &doc);

        match template::body(r#"{"disks":{d}}"#, &values(&[("d", &junk)]), BodyKind::Json) {
            Ok(body) => {
                let one: Value = serde_json::from_str(&junk).expect("accepted only when JSON");
                let parsed: Value = serde_json::from_str(&body).expect("valid JSON");
                prop_assert_eq!(&parsed["disks"], &one);
            }
            Err(err) => {
                prop_assert_eq!(err.kind(), ErrorKind::Validation);
                prop_assert!(serde_json::from_str::<Value>(&junk).is_err());
            }
        }
    }

    /// Whatever JSON text surrounds a bare placeholder, the body is valid JSON or the value
    /// is refused with a ValidationError naming it, never an internal error (`[1{v}]` with
    /// `[]`, `-{v}` with `-5` used to be).
    #[test]
    fn bare_values_next_to_template_text_are_refused_not_internal_errors(
        skeleton in prop::sample::select(vec!["@", "[@]", "{\"k\": @}", "[1, @, 2]"]),
        before in prop::sample::select(vec!["", "1", "-", "0", "1.", "[", "\"s\", ", "tr"]),
        after in prop::sample::select(vec!["", "0", "1", "e5", "]", ", 1", "ue"]),
        value in prop_oneof![
            json_value().prop_map(|v| v.to_string()),
            "[-0-9.e\\[\\]]{1,4}",
            any_value(),
        ],
    ) {
        let template = skeleton.replace('@', &format!("{before}{{v}}{after}"));
        match template::body(&template, &values(&[("v", &value)]), BodyKind::Json) {
            Ok(body) => {
                let probe = template::body(&template, &values(&[("v", "0")]), BodyKind::Json);
                if probe.is_ok_and(|p| serde_json::from_str::<Value>(&p).is_ok()) {
                    prop_assert!(serde_json::from_str::<Value>(&body).is_ok(), "{}", body);
                }
            }
            Err(err) => {
                prop_assert_eq!(err.kind(), ErrorKind::Validation, "{}: {}", template, err);
                prop_assert_eq!(&err.details()["parameter"], "v");
            }
        }
    }

    /// Percent-encoded dots in the template cannot turn a value's segment into `.` or `..`
    /// (an empty value after `%2e%2e` used to climb a level).
    #[test]
    fn a_value_never_leaves_a_dot_segment(
        dots in prop::sample::select(vec!["", ".", "..", "%2e", "%2E%2e", ".%2e", "%2e."]),
        value in any_value(),
    ) {
        let template = format!("http://h/a/{dots}{{v}}/b");
        if let Ok(text) = template::url(&template, &values(&[("v", &value)])) {
            let url = url::Url::parse(&text).expect("parses");
            let segments: Vec<&str> = url.path_segments().expect("segments").collect();
            prop_assert_eq!(segments.len(), 3, "{}", text);
            prop_assert_eq!(segments[0], "a");
            prop_assert_eq!(segments[2], "b");
        }
    }

    /// A form body value is one percent-encoded field.
    #[test]
    fn form_body_values_are_one_field(value in any_value()) {
        let body = template::body("a={v}&b=1", &values(&[("v", &value)]), BodyKind::Form)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        prop_assert_eq!(pairs, vec![("a".to_string(), value.clone()), ("b".to_string(), "1".to_string())]);
    }

    /// URL, header and body substitution never panic on arbitrary templates.
    #[test]
    fn http_substitution_never_panics(template in any::<String>(), value in any_value()) {
        let vals: Values = template::placeholders(&template)
            .map(|n| (n.to_string(), value.clone()))
            .collect();
        let _ = template::url(&template, &vals);
        let _ = template::header(&template, &vals);
        let _ = template::body(&template, &vals, BodyKind::Json);
        let _ = template::body(&template, &vals, BodyKind::Form);
    }
}

/// JSON values without floats (whose text form need not round-trip bit for bit).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        "[a-z ]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,6}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Parsers

/// Every regex, pointer and `(rules, output)` pair of the shipped providers and their fixtures.
struct Corpus {
    regexes: Vec<String>,
    pointers: Vec<String>,
    cases: Vec<(Value, String)>,
    providers: Vec<String>,
}

fn corpus() -> &'static Corpus {
    static CORPUS: std::sync::OnceLock<Corpus> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut corpus = Corpus {
            regexes: Vec::new(),
            pointers: vec![String::new(), "/*".into(), "/a/*/b".into(), "/0".into()],
            cases: Vec::new(),
            providers: Vec::new(),
        };
        let dir = repo().join("providers");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("providers/")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("provider file");
            let doc: Value = serde_json::from_str(&text).expect("provider JSON");
            collect_strings(&doc, "regex", &mut corpus.regexes);
            collect_strings(&doc, "pointer", &mut corpus.pointers);
            collect_strings(&doc, "items", &mut corpus.pointers);
            let name = file
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned();
            let fixtures = dir.join("fixtures").join(&name);
            for (action, spec) in doc["actions"].as_object().into_iter().flatten() {
                let Some(rules) = spec.get("parse_rules") else {
                    continue;
                };
                let mut outputs = vec![String::new()];
                for entry in std::fs::read_dir(&fixtures).into_iter().flatten() {
                    let path = entry.expect("fixture").path();
                    let Ok(fixture) = std::fs::read_to_string(&path) else {
                        continue;
                    };
                    let Ok(fixture) = serde_json::from_str::<Value>(&fixture) else {
                        continue;
                    };
                    if fixture["action"] == action.as_str()
                        && let Some(output) = fixture["output"].as_str()
                    {
                        outputs.push(output.to_string());
                    }
                }
                for output in outputs {
                    corpus.cases.push((rules.clone(), output));
                }
            }
            corpus.providers.push(text);
        }
        corpus.regexes.sort();
        corpus.regexes.dedup();
        corpus.pointers.sort();
        corpus.pointers.dedup();
        assert!(
            corpus.cases.len() > 50,
            "the shipped providers have parse rules"
        );
        corpus
    })
}

fn collect_strings(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == key
                    && let Some(s) = child.as_str()
                {
                    out.push(s.to_string());
                }
                collect_strings(child, key, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|c| collect_strings(c, key, out)),
        _ => {}
    }
}

/// Regexes: the shipped ones, the whole-body spellings, and small random ones.
fn regex_source() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(corpus().regexes.clone()),
        Just("(.*)".to_string()),
        Just("(?s)(.*)".to_string()),
        "[a-z(). *+?|^$\\\\dsw\\[\\]{},:-]{0,14}",
    ]
}

fn pointer() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(corpus().pointers.clone()),
        "[/*~0-2a-c]{0,8}",
    ]
}

fn pattern(json_rules: bool) -> impl Strategy<Value = Value> {
    (
        prop::option::of(regex_source()),
        prop::option::of(pointer()),
        prop::option::of(0..4usize),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![
            "boolean", "number", "json", "int", "bogus",
        ])),
    )
        .prop_map(move |(regex, pointer, group, optional, transform)| {
            let mut p = serde_json::Map::new();
            if json_rules {
                p.insert(
                    "pointer".into(),
                    json!(pointer.unwrap_or_else(|| "/id".into())),
                );
                if let Some(r) = regex.filter(|_| optional) {
                    p.insert("regex".into(), json!(r));
                }
            } else {
                p.insert(
                    "regex".into(),
                    json!(regex.unwrap_or_else(|| "(.*)".into())),
                );
            }
            if let Some(g) = group {
                p.insert("group".into(), json!(g));
            }
            p.insert("optional".into(), json!(optional));
            if let Some(t) = transform {
                p.insert("transform".into(), json!(t));
            }
            Value::Object(p)
        })
}

/// Rule sets of every type, mostly well-formed.
fn rules() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec!["object", "array", "properties", "json"]);
    kind.prop_flat_map(|kind| {
        let json_rules = kind == "json";
        (
            prop::collection::vec(("[a-z_]{1,8}", pattern(json_rules)), 0..4),
            prop::option::of(prop_oneof![
                Just("\n".to_string()),
                Just("\\n\\s*\\n".to_string()),
                Just("---".to_string()),
                "[a-z\\\\n|]{1,4}",
            ]),
            prop::collection::vec(
                (
                    "[a-z]{1,6}",
                    prop::option::of(prop_oneof![Just("\\d+".to_string()), "[a-z\\\\d+*]{1,4}"]),
                    prop::collection::vec(("[a-z]{1,6}", pattern(false)), 0..3),
                ),
                0..2,
            ),
            prop::option::of(pointer()),
        )
            .prop_map(move |(patterns, separator, arrays, items)| {
                let mut r = serde_json::Map::new();
                r.insert("type".into(), json!(kind));
                r.insert(
                    "patterns".into(),
                    Value::Object(patterns.into_iter().collect()),
                );
                if json_rules {
                    if let Some(items) = items {
                        r.insert("items".into(), json!(items));
                    }
                } else {
                    if kind == "array"
                        && let Some(sep) = separator
                    {
                        r.insert("separator".into(), json!(sep));
                    }
                    if kind == "properties" {
                        let arrays: serde_json::Map<String, Value> = arrays
                            .into_iter()
                            .map(|(name, index, object)| {
                                let mut a = serde_json::Map::new();
                                if let Some(index) = index {
                                    a.insert("index".into(), json!(index));
                                }
                                a.insert(
                                    "object".into(),
                                    Value::Object(object.into_iter().collect()),
                                );
                                (name, Value::Object(a))
                            })
                            .collect();
                        r.insert("array_patterns".into(), Value::Object(arrays));
                    }
                }
                Value::Object(r)
            })
    })
}

/// Outputs: anything, JSON documents, lines of `Key: value`, and (below) fixture outputs
/// mutated.
fn output() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        json_value().prop_map(|v| v.to_string()),
        json_value().prop_map(|v| serde_json::to_string_pretty(&v).expect("serializes")),
        prop::collection::vec("[A-Za-z0-9-]{1,8}: [a-z0-9 .-]{0,10}", 0..8)
            .prop_map(|lines| lines.join("\n")),
    ]
}

/// Cuts `text` at a character boundary near `at` and splices `insert` there.
fn mutate(text: &str, at: prop::sample::Index, keep_tail: bool, insert: &str) -> String {
    let mut cut = at.index(text.len() + 1);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let tail = if keep_tail { &text[cut..] } else { "" };
    format!("{}{insert}{tail}", &text[..cut])
}

fn apply(rules: &Value, output: &str) -> Option<Result<Value, Error>> {
    let rules: ParseRules = serde_json::from_value(rules.clone()).ok()?;
    let compiled = CompiledRules::compile(&rules).ok()?;
    Some(compiled.apply(output))
}

proptest! {
    #![proptest_config(config(256))]

    /// Generated rules that compile never panic on any output; errors are ProviderErrors.
    #[test]
    fn parsers_never_panic_on_any_output(rules in rules(), output in output()) {
        if let Some(Err(err)) = apply(&rules, &output) {
            prop_assert_eq!(err.kind(), ErrorKind::Provider, "{}", err);
        }
    }

    /// The shipped providers' rules never panic on their fixtures' outputs, however cut and
    /// spliced.
    #[test]
    fn shipped_rules_never_panic_on_mutated_outputs(
        case in prop::sample::select(corpus().cases.clone()),
        at in any::<prop::sample::Index>(),
        keep_tail in any::<bool>(),
        insert in prop_oneof![Just(String::new()), any::<String>(), "[\\[\\]{}\",:\n]{1,3}"],
    ) {
        let (rules, output) = case;
        let output = mutate(&output, at, keep_tail, &insert);
        let result = apply(&rules, &output).expect("shipped rules compile");
        if let Err(err) = result {
            prop_assert_eq!(err.kind(), ErrorKind::Provider, "{}", err);
        }
    }

    /// A whole-body capture passes complete JSON on as JSON, and never passes JSON that stops
    /// in the middle on as a string (a truncated body is an error).
    #[test]
    fn whole_body_json_cut_short_is_an_error(doc in json_value(), at in any::<prop::sample::Index>()) {
        prop_assume!(doc.is_object() || doc.is_array());
        let text = doc.to_string();
        let rules = json!({"type": "object", "patterns": {"all": {"regex": "(.*)", "group": 1}}});
        let whole = apply(&rules, &text).expect("compiles").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&whole["all"], &doc);
        let cut = mutate(&text, at, false, "");
        prop_assume!(!cut.trim().is_empty() && cut.len() < text.len());
        let err = apply(&rules, &cut).expect("compiles").expect_err("JSON cut short");
        prop_assert_eq!(err.kind(), ErrorKind::Provider);
    }
}

// ---------------------------------------------------------------------------------------------
// Streaming list output

/// What the tree path prints for a list parse as JSON (`cpi parse --json`): the parsed value,
/// statuses normalized, serialized and escaped; or the error's message.
fn tree_bytes(
    rules: &CompiledRules,
    output: &str,
    status: Option<(&StatusMapper, Vocabulary)>,
) -> Result<String, String> {
    let mut value = rules.apply(output).map_err(|e| e.to_string())?;
    if let Some((mapper, vocabulary)) = status {
        mapper.normalize(&mut value, vocabulary);
    }
    Ok(cpi::escape::json(&value.to_string()).into_owned())
}

/// The same through the streaming path: record by record into one buffer, no tree.
fn streamed_bytes(
    rules: &CompiledRules,
    output: &str,
    status: Option<(&StatusMapper, Vocabulary)>,
) -> Result<String, String> {
    let status = status.map(|(m, v)| (m.clone(), v));
    let mut list = JsonList::new(Vec::new(), status);
    let listed = rules
        .each_record(output, &mut list)
        .map_err(|e| e.to_string())?;
    assert!(listed, "streaming is asked only of list rules");
    let bytes = list.finish().map_err(|e| e.to_string())?;
    Ok(String::from_utf8(bytes).expect("streamed JSON is UTF-8"))
}

/// Streamed and tree output of one case are the same bytes (or the same error), with and
/// without status normalization (a provider table with an entry, or none).
fn same_either_way(rules: &Value, output: &str) -> Result<(), TestCaseError> {
    let Ok(parsed) = serde_json::from_value::<ParseRules>(rules.clone()) else {
        return Ok(());
    };
    let Ok(compiled) = CompiledRules::compile(&parsed) else {
        return Ok(());
    };
    if !compiled.is_list() {
        return Ok(());
    }
    let table: indexmap::IndexMap<String, String> = [("Weird".to_string(), "stopped".to_string())]
        .into_iter()
        .collect();
    let mapper = StatusMapper::new(&table);
    for status in [
        None,
        Some((&mapper, Vocabulary::Worker)),
        Some((&mapper, Vocabulary::Auth)),
    ] {
        prop_assert_eq!(
            streamed_bytes(&compiled, output, status),
            tree_bytes(&compiled, output, status)
        );
    }
    // Normalization is skipped only where no status can be.
    if !compiled.may_yield_status()
        && let Ok(plain) = tree_bytes(&compiled, output, None)
    {
        prop_assert_eq!(
            Ok(plain),
            tree_bytes(&compiled, output, Some((&mapper, Vocabulary::Worker)))
        );
    }
    Ok(())
}

/// Records with statuses, transforms, odd characters and lines no pattern matches.
fn status_records() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        "[a-z0-9-]{1,8} (running|stopped|Weird|POWEROFF|) [0-9]{1,4}",
        "[a-z0-9-]{1,8} (running|off) [0-9]{1,3}\\.[0-9] \\{\"status\": \"(active|x)\"\\}",
        "\\PC{0,12}",
        Just(String::new()),
        Just("id\u{202e} \u{85}running\r 1".to_string()),
    ];
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
}

/// Array rules reading those records in several ways.
fn status_rules() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec![
        json!({"regex": "^(\\S+) "}),
        json!({"regex": "^\\S+ (\\w*) ", "optional": true}),
        json!({"regex": " (\\d+)$", "transform": "number"}),
        json!({"regex": " (\\d+\\.\\d) ", "transform": "number", "optional": true}),
        json!({"regex": "(\\{.*\\})", "transform": "json", "optional": true}),
        json!({"regex": "running", "transform": "boolean"}),
        json!({"regex": "(.*)"}),
    ]);
    let name = prop::sample::select(vec!["id", "status", "raw_status", "size", "extra", "on"]);
    (
        prop::collection::vec((name, field), 1..5),
        prop::sample::select(vec!["\n", "\\n", "\\n\\s*\\n", " "]),
    )
        .prop_map(|(fields, separator)| {
            let patterns: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(name, field)| (name.to_string(), field))
                .collect();
            json!({"type": "array", "separator": separator, "patterns": patterns})
        })
}

proptest! {
    #![proptest_config(config(256))]

    /// Generated list rules: the streamed output is byte for byte the tree path's.
    #[test]
    fn streamed_lists_are_the_tree_output_byte_for_byte(rules in rules(), output in output()) {
        same_either_way(&rules, &output)?;
    }

    /// Array rules over records with statuses, transforms and odd characters: byte for byte.
    #[test]
    fn streamed_status_records_are_the_tree_output_byte_for_byte(
        rules in status_rules(),
        output in status_records(),
    ) {
        same_either_way(&rules, &output)?;
    }

    /// The shipped list rules on their fixtures' outputs, cut and spliced: byte for byte.
    #[test]
    fn streamed_shipped_lists_are_the_tree_output_byte_for_byte(
        case in prop::sample::select(corpus().cases.clone()),
        at in any::<prop::sample::Index>(),
        insert in prop_oneof![Just(String::new()), any::<String>(), "[\\[\\]{}\",:\n]{1,3}"],
    ) {
        let (rules, output) = case;
        same_either_way(&rules, &output)?;
        same_either_way(&rules, &mutate(&output, at, true, &insert))?;
    }
}

/// Every built-in provider's fixtures: `cpi parse` prints the same bytes streamed as through
/// `Engine::parse_saved` (where the rules make a list; nothing is written otherwise).
#[test]
fn streamed_fixtures_print_what_parse_saved_prints() {
    let mut lists = 0;
    for provider in cpi::provider::builtin::providers() {
        let provider = provider.expect("built-in providers load");
        for (_, text) in cpi::provider::builtin::fixtures(&provider.name) {
            let fixture: Value = serde_json::from_str(text).expect("fixture JSON");
            let (Some(action), Some(output)) =
                (fixture["action"].as_str(), fixture["output"].as_str())
            else {
                continue;
            };
            let mut out = Vec::new();
            let streamed = write_saved(&provider, action, output, &mut out);
            let tree = cpi::Engine::parse_saved(&provider, action, output);
            match (streamed, tree) {
                (Ok(true), Ok(value)) => {
                    lists += 1;
                    assert_eq!(
                        String::from_utf8(out).expect("UTF-8"),
                        cpi::escape::json(&value.to_string()),
                        "{} {action}",
                        provider.name
                    );
                }
                (Ok(false), _) => assert!(out.is_empty()),
                (Err(a), Err(b)) => assert_eq!(a.to_json(), b.to_json()),
                (a, b) => panic!("{} {action}: streamed {a:?}, tree {b:?}", provider.name),
            }
        }
    }
    assert!(
        lists > 20,
        "the built-in fixtures have list parses ({lists})"
    );
}

// ---------------------------------------------------------------------------------------------
// Provider files

/// A JSON document with one node (picked by `at`) replaced by `with`.
fn replace_node(doc: &mut Value, at: prop::sample::Index, with: Value) {
    fn count(v: &Value) -> usize {
        1 + match v {
            Value::Object(m) => m.values().map(count).sum(),
            Value::Array(a) => a.iter().map(count).sum(),
            _ => 0,
        }
    }
    fn walk(v: &mut Value, target: &mut usize, with: &mut Option<Value>) {
        if *target == 0 {
            if let Some(new) = with.take() {
                *v = new;
            }
            return;
        }
        *target -= 1;
        match v {
            Value::Object(m) => m.values_mut().for_each(|c| walk(c, target, with)),
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, target, with)),
            _ => {}
        }
    }
    let mut target = at.index(count(doc));
    walk(doc, &mut target, &mut Some(with));
}

/// Everything cpi does with a provider file it has just read: parse, validate, compile every
/// action's rules, list placeholders.
fn load_everything(text: &str) {
    let path = Path::new("fuzz.json");
    let _ = validate::validate_text(text, path);
    if let Ok(provider) = Provider::from_json(text, path) {
        for action in provider.actions.values() {
            let _ = action.rules();
            let _ = action.target.placeholders();
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// Arbitrary bytes and arbitrary JSON never make loading panic.
    #[test]
    fn loading_arbitrary_text_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        doc in json_value(),
    ) {
        load_everything(&String::from_utf8_lossy(&bytes));
        load_everything(&doc.to_string());
    }

    /// Shipped provider files with one node replaced, or cut short, never make loading panic.
    #[test]
    fn loading_mutated_provider_files_never_panics(
        file in prop::sample::select(corpus().providers.clone()),
        at in any::<prop::sample::Index>(),
        with in json_value(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut doc: Value = serde_json::from_str(&file).expect("shipped file is JSON");
        replace_node(&mut doc, at, with);
        let text = doc.to_string();
        load_everything(&text);
        load_everything(&mutate(&file, cut, false, ""));
    }
}
