//! Template substitution, cpi's injection boundary: for any template and any value, a value
//! never changes the structure a plain value gives (argv words; URL path segments, query
//! parameters and fragment), header values never carry a line break, and nothing panics or
//! reports an internal error.
#![no_main]

use cpi::ErrorKind;
use cpi::template::{self, BodyKind, Values};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    template: String,
    value: String,
}

/// Every placeholder of `template` set to `value`.
fn values(template: &str, value: &str) -> Values {
    template::placeholders(template)
        .map(|name| (name.to_string(), value.to_string()))
        .collect()
}

/// (path segments, query parameters, has a fragment) of a URL cpi built.
fn shape(text: &str) -> (usize, usize, bool) {
    let url = url::Url::parse(text).expect("a URL cpi built parses");
    assert!(matches!(url.scheme(), "http" | "https"), "{text}");
    let segments = url.path_segments().map_or(0, Iterator::count);
    (segments, url.query_pairs().count(), url.fragment().is_some())
}

fuzz_target!(|input: Input| {
    let t = input.template.as_str();
    let given = values(t, &input.value);
    let plain = values(t, "x");

    // Commands: words are split before substitution, so a value never adds or removes one.
    let argv = template::command_argv(t, &given);
    if let (Ok(argv), Ok(plain)) = (&argv, template::command_argv(t, &plain)) {
        assert_eq!(argv.len(), plain.len(), "{t:?} with {:?}", input.value);
    }
    if let Err(err) = &argv {
        assert_ne!(err.kind(), ErrorKind::Internal, "{err}");
    }
    let _ = template::check_command(t);

    // URLs: a value (other than the base URL) is one segment or one query value.
    match template::url(t, &given) {
        Ok(url) => {
            let base_first = template::placeholders(t)
                .next()
                .is_some_and(|first| t.starts_with(&format!("{{{first}}}")));
            if !base_first && let Ok(plain_url) = template::url(t, &plain) {
                assert_eq!(
                    shape(&url),
                    shape(&plain_url),
                    "{t:?} with {:?}: {url} vs {plain_url}",
                    input.value
                );
            }
        }
        Err(err) => assert_ne!(err.kind(), ErrorKind::Internal, "{err}"),
    }

    // Headers: never a line break or NUL coming from a value.
    if let Ok(header) = template::header(t, &given) {
        let breaks = |s: &str| s.matches(['\r', '\n', '\0']).count();
        let plain_header = template::header(t, &plain).expect("a plain value is a valid header");
        assert_eq!(breaks(&header), breaks(&plain_header), "{t:?}");
    }

    // Bodies: a JSON template stays JSON (or the value is refused), forms never fail.
    for kind in [BodyKind::Json, BodyKind::Form] {
        if let Err(err) = template::body(t, &given, kind) {
            assert_ne!(err.kind(), ErrorKind::Internal, "{t:?} with {:?}: {err}", input.value);
        }
    }
});
