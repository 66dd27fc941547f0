//! Loading a provider file: whatever the bytes, validating and loading it, then compiling
//! every action's parse rules and listing its placeholders, never panics.
#![no_main]

use std::path::Path;

use cpi::provider::{Action, Provider};
use libfuzzer_sys::fuzz_target;

fn visit(action: &Action) {
    let _ = action.rules();
    let _ = action.target.placeholders();
    action.pre_exec.iter().chain(&action.post_exec).for_each(visit);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let path = Path::new("fuzz.json");
    let _ = cpi_authoring::validate::validate_text(&text, path);
    if let Ok(provider) = Provider::from_json(&text, path) {
        provider.actions.values().for_each(visit);
    }
});
