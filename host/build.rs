//! Builds the shipped providers into the binary: every `providers/*.json` and every
//! `providers/fixtures/NAME/*.json` becomes an `include_str!` in `$OUT_DIR/builtin.rs`, read by
//! `src/provider/builtin.rs`. A changed, added or removed file rebuilds cpi.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("..")
        .join("providers");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut out = String::from("/// The shipped provider files: (file name, text).\n");
    out.push_str("pub(super) static PROVIDERS: &[(&str, &str)] = &[\n");
    for file in json_files(&root) {
        let _ = writeln!(out, "    ({:?}, {}),", file_name(&file), include(&file));
    }
    out.push_str("];\n\n/// Their fixtures: (provider directory name, file name, text).\n");
    out.push_str("pub(super) static FIXTURES: &[(&str, &str, &str)] = &[\n");
    for dir in dirs(&root.join("fixtures")) {
        println!("cargo:rerun-if-changed={}", dir.display());
        for file in json_files(&dir) {
            let (dir, name) = (file_name(&dir), file_name(&file));
            let _ = writeln!(out, "    ({dir:?}, {name:?}, {}),", include(&file));
        }
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("builtin.rs");
    std::fs::write(dest, out).expect("write builtin.rs");
}

/// `include_str!("/absolute/path")` for a shipped file.
fn include(file: &Path) -> String {
    let path = file.canonicalize().expect("a shipped file resolves");
    format!("include_str!({:?})", path.display().to_string())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .expect("shipped file names are UTF-8")
        .to_string()
}

/// The `*.json` regular files directly in `dir`, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json") && p.is_file());
    files.sort();
    files
}

/// The subdirectories of `dir`, sorted.
fn dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    found.retain(|p| p.is_dir());
    found.sort();
    found
}
