//! `"type": "table"` parse rules: column-aligned tables as CLIs print them for people
//! (`virsh list`, `docker ps`, `kubectl get`, `VBoxManage`-like and boxed tables).
//!
//! Semantics (see the README's provider file reference):
//! - the header is the first line `header` (a regex) matches, or without it the first line
//!   that is neither blank nor a rule line; every later line that is neither is a row;
//! - rule lines (`-----`, `+----+----+`, `|:---|`, box-drawing `├──┼──┤`) are skipped;
//! - without a `separator`, columns are located by the header's words: a column starts where
//!   its header cell starts (header cells are split by runs of two or more spaces, so
//!   `CONTAINER ID` is one column) and runs to the next column's start; the last one runs to
//!   the end of the line. A value that runs past the next column's start (an overlong name in
//!   a fixed-width table) stays whole in its own column. Cells are trimmed, so values keep
//!   their inner spaces (`cache 1`, `shut off`);
//! - with a `separator` (a regex: `\t`, `\s*\|\s*`), header and rows are split by it; a
//!   boxed table (`| Id | Name |`) is split on its bars without one;
//! - a field names its header cell with `column` (case and spacing ignored); a declared
//!   column found as words inside a single-space header (`PID TTY`) is split out of it;
//!   `regex` narrows the cell, `transform` converts it; an empty cell or a column the header
//!   lacks is a missing field (an error unless `optional`, then omitted; `false` for
//!   `boolean`);
//! - `\r\n` ends a line like `\n`.

use regex::Regex;
use serde_json::{Map, Value};

use super::rules::{ParseRules, Pattern};
use super::{Field, compile_regex, regex_and_group, transform_of};
use crate::error::{Error, Result};

/// Compiled `table` rules.
#[derive(Debug, Clone)]
pub(super) struct Table {
    header: Option<Regex>,
    separator: Option<Regex>,
    fields: Vec<TableField>,
}

/// One field of a table row: the column it reads and how its cell becomes a value.
#[derive(Debug, Clone)]
pub(super) struct TableField {
    column: String,
    field: Field,
}

/// A boxed table's column bar, used when the header starts with one and no separator is set.
const BOX_BAR: &str = r"\s*[|│┃║]\s*";

impl Table {
    /// Compiles table rules: every field needs a `column`; `header` and `separator` are regexes.
    pub(super) fn compile(rules: &ParseRules) -> Result<Table> {
        if rules.items.is_some() || !rules.array_patterns.is_empty() {
            return Err(Error::validation(
                "rules of type 'table' take \"patterns\" (with \"column\"), \"header\" and \
                 \"separator\"; \"items\" and \"array_patterns\" belong to other rule types"
                    .to_string(),
            ));
        }
        let regex_of = |what: &str, source: &Option<String>| {
            source
                .as_deref()
                .map(|s| {
                    compile_regex(s)
                        .map_err(|e| Error::validation(format!("invalid {what} regex {s:?}: {e}")))
                })
                .transpose()
        };
        let fields = rules
            .patterns
            .iter()
            .map(|(name, p)| compile_field(name, p))
            .collect::<Result<Vec<_>>>()?;
        Ok(Table {
            header: regex_of("header", &rules.header)?,
            separator: regex_of("separator", &rules.separator)?,
            fields,
        })
    }

    /// The field names, in file order.
    pub(super) fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| f.field.name.as_str())
    }

    /// Reads the table in `output`: one object per row, in output order.
    pub(super) fn apply(&self, output: &str) -> Result<Value> {
        let mut lines = output.lines().enumerate();
        let header = lines.by_ref().find(|(_, line)| match &self.header {
            Some(re) => re.is_match(line),
            None => !is_blank_or_rule(line),
        });
        let Some((_, header)) = header else {
            if output.lines().all(is_blank_or_rule) {
                return Ok(Value::Array(Vec::new()));
            }
            let excerpt: String = output.chars().take(200).collect();
            return Err(Error::provider(
                "no header line in the output: the table's \"header\" regex matches no line",
            )
            .with_detail("output_excerpt", excerpt));
        };
        let layout = self.layout(header);
        let mut budget = super::Budget::default();
        let mut rows = Vec::new();
        for (n, line) in lines.filter(|(_, line)| !is_blank_or_rule(line)) {
            budget.record()?;
            let cells = layout.cells(line);
            rows.push(Value::Object(
                self.row(&layout, &cells, &mut budget)
                    .map_err(|e| e.with_detail("line", n + 1))?,
            ));
        }
        Ok(Value::Array(rows))
    }

    /// How the header's columns are found in a row.
    fn layout(&self, header: &str) -> Layout {
        let split_by = self.separator.clone().or_else(|| {
            let first = header.trim_start().chars().next();
            matches!(first, Some('|' | '│' | '┃' | '║'))
                .then(|| compile_regex(BOX_BAR).expect("box bar regex"))
        });
        match split_by {
            Some(separator) => {
                let names: Vec<String> = separator.split(header).map(normalize).collect();
                Layout::Split { separator, names }
            }
            None => {
                let wanted: Vec<&str> = self.fields.iter().map(|f| f.column.as_str()).collect();
                Layout::Positions(columns_of(header, &wanted))
            }
        }
    }

    fn row(
        &self,
        layout: &Layout,
        cells: &[(String, String)],
        budget: &mut super::Budget,
    ) -> Result<Map<String, Value>> {
        let mut item = Map::new();
        for TableField { column, field } in &self.fields {
            let cell = cells
                .iter()
                .find(|(name, _)| name == column)
                .map(|(_, cell)| cell.as_str())
                .filter(|cell| !cell.is_empty());
            let value = match cell {
                Some(cell) => field.extract(cell, budget)?,
                None if field.transform == Some(super::Transform::Boolean) => {
                    Some(Value::Bool(false))
                }
                None => None,
            };
            match value {
                Some(value) => {
                    item.insert(field.name.clone(), value);
                }
                None if field.optional => {}
                None => return Err(missing(field, column, layout, cell)),
            }
        }
        Ok(item)
    }
}

/// The error for a required field a row lacks: an absent column names the header's columns.
fn missing(field: &Field, column: &str, layout: &Layout, cell: Option<&str>) -> Error {
    let names = layout.names();
    let why = if !names.iter().any(|n| n == column) {
        format!(
            "the header has no column '{column}' (it has: {})",
            names
                .iter()
                .filter(|n| !n.is_empty())
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if cell.is_none() {
        format!("its cell in column '{column}' is empty")
    } else {
        format!(
            "its regex {:?} does not match the cell",
            field.regex.as_str()
        )
    };
    Error::provider(format!("required field '{}' not found: {why}", field.name))
        .with_detail("field", field.name.as_str())
        .with_detail("column", column)
}

/// Checks one table field as compilation would (column, regex, group, transform).
pub(super) fn check_field(name: &str, pattern: &Pattern) -> Result<()> {
    compile_field(name, pattern).map(|_| ())
}

fn compile_field(name: &str, pattern: &Pattern) -> Result<TableField> {
    let at = |what: String| {
        Error::validation(format!("patterns field '{name}': {what}")).with_detail("field", name)
    };
    if pattern.pointer.is_some() {
        return Err(at(
            "\"pointer\" fields only apply to rules of type 'json'; a table field names its \
             \"column\""
                .into(),
        ));
    }
    let Some(column) = pattern.column.as_deref().map(normalize) else {
        return Err(at(
            "a table field needs a \"column\": the header text of its column".into(),
        ));
    };
    if column.is_empty() {
        return Err(at("\"column\" is empty".into()));
    }
    let source = pattern.regex.as_deref().unwrap_or("^(.*)$");
    let (regex, group) = regex_and_group(source, pattern.group).map_err(at)?;
    let transform = transform_of(pattern).map_err(at)?;
    Ok(TableField {
        column,
        field: Field {
            name: name.to_string(),
            regex,
            group,
            optional: pattern.optional,
            transform,
            whole_body: false,
        },
    })
}

/// Header text as fields name it: lower case, inner whitespace collapsed.
fn normalize(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Whether a line is blank or a rule line: only dashes, `=`, `_`, `+`, bars, colons and box
/// drawing, with a run of at least two rule characters (so a row of `-` cells is a row).
pub(super) fn is_blank_or_rule(line: &str) -> bool {
    let line = line.trim();
    let rule = |c: char| "-=_".contains(c) || ('\u{2500}'..='\u{257F}').contains(&c);
    let chars: Vec<char> = line.chars().collect();
    line.is_empty()
        || (chars
            .iter()
            .all(|&c| c.is_whitespace() || rule(c) || "+|:".contains(c))
            && chars.windows(2).any(|w| rule(w[0]) && rule(w[1])))
}

/// Where a row's cells are.
#[derive(Debug)]
enum Layout {
    /// Columns at the header cells' character positions: (start, normalized name).
    Positions(Vec<(usize, String)>),
    /// Cells split by a regex, named by the header's cells at the same index.
    Split {
        separator: Regex,
        names: Vec<String>,
    },
}

impl Layout {
    /// The column names, in header order.
    fn names(&self) -> Vec<String> {
        match self {
            Layout::Positions(columns) => columns.iter().map(|(_, n)| n.clone()).collect(),
            Layout::Split { names, .. } => names.clone(),
        }
    }

    /// A row's (column name, trimmed cell) pairs.
    fn cells(&self, line: &str) -> Vec<(String, String)> {
        match self {
            Layout::Split { separator, names } => names
                .iter()
                .cloned()
                .zip(separator.split(line).map(|c| c.trim().to_string()))
                .collect(),
            Layout::Positions(columns) => {
                let chars: Vec<char> = line.chars().collect();
                let mut starts: Vec<usize> = Vec::with_capacity(columns.len());
                for (i, (start, _)) in columns.iter().enumerate() {
                    let start = if i == 0 {
                        0
                    } else {
                        word_end_if_inside(&chars, *start).max(starts[i - 1])
                    };
                    starts.push(start.min(chars.len()));
                }
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, name))| {
                        let end = starts.get(i + 1).copied().unwrap_or(chars.len());
                        let cell: String = chars[starts[i]..end.max(starts[i])].iter().collect();
                        (name.clone(), cell.trim().to_string())
                    })
                    .collect()
            }
        }
    }
}

/// A column boundary at `at`: moved to the end of the word it falls inside, so a value that
/// runs past its column stays whole.
fn word_end_if_inside(chars: &[char], at: usize) -> usize {
    if at == 0 || at >= chars.len() || chars[at - 1].is_whitespace() || chars[at].is_whitespace() {
        return at;
    }
    chars[at..]
        .iter()
        .position(|c| c.is_whitespace())
        .map_or(chars.len(), |n| at + n)
}

/// The header's columns: cells split by runs of two or more spaces, with any `wanted` column
/// found as whole words inside a cell split out of it.
fn columns_of(header: &str, wanted: &[&str]) -> Vec<(usize, String)> {
    // Words with their character positions.
    let mut words: Vec<(usize, String)> = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, c) in header.chars().enumerate() {
        match (c.is_whitespace(), &mut current) {
            (false, Some((_, word))) => word.push(c),
            (false, None) => current = Some((i, c.to_string())),
            (true, Some(_)) => words.extend(current.take()),
            (true, None) => {}
        }
    }
    words.extend(current);
    // Cells: words joined across single spaces.
    let mut cells: Vec<Vec<(usize, String)>> = Vec::new();
    for (start, word) in words {
        let joins = cells
            .last()
            .and_then(|cell| cell.last())
            .is_some_and(|(s, w)| {
                let end = s + w.chars().count();
                start == end + 1
            });
        match cells.last_mut() {
            Some(cell) if joins => cell.push((start, word)),
            _ => cells.push(vec![(start, word)]),
        }
    }
    let mut columns = Vec::new();
    for cell in cells {
        let name = normalize(
            &cell
                .iter()
                .map(|(_, w)| w.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        );
        if wanted.contains(&name.as_str()) || cell.len() == 1 {
            columns.push((cell[0].0, name));
            continue;
        }
        columns.extend(split_cell(&cell, wanted));
    }
    columns
}

/// Splits a header cell of several words into the wanted columns it holds (each a run of its
/// words) and the words between them.
fn split_cell(cell: &[(usize, String)], wanted: &[&str]) -> Vec<(usize, String)> {
    let lower: Vec<String> = cell.iter().map(|(_, w)| w.to_lowercase()).collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cell.len() {
        let found = wanted.iter().find_map(|want| {
            let parts: Vec<&str> = want.split(' ').collect();
            let fits = i + parts.len() <= lower.len()
                && parts.iter().zip(&lower[i..]).all(|(p, w)| p == w);
            fits.then_some(parts.len())
        });
        let take = found.unwrap_or(1);
        out.push((cell[i].0, lower[i..i + take].join(" ")));
        i += take;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(rules: Value) -> Table {
        let rules: ParseRules = serde_json::from_value(rules).unwrap();
        Table::compile(&rules).unwrap()
    }

    fn virsh() -> Table {
        table(json!({"type": "table", "patterns": {
            "id": {"column": "Name"},
            "status": {"column": "State"},
            "domain_id": {"column": "Id"}
        }}))
    }

    #[test]
    fn virsh_list_keeps_names_and_states_with_spaces_whole() {
        let out = " Id   Name      State\n---------------------------\n 1    web-1     running\n \
                   2    cache 1   paused\n -    db 2      shut off\n\n";
        assert_eq!(
            virsh().apply(out).unwrap(),
            json!([
                {"id": "web-1", "status": "running", "domain_id": "1"},
                {"id": "cache 1", "status": "paused", "domain_id": "2"},
                {"id": "db 2", "status": "shut off", "domain_id": "-"}
            ])
        );
    }

    #[test]
    fn crlf_lines_and_an_overlong_value_stay_whole() {
        let out = " Id    Name       State\r\n------------------------\r\n \
                   -     a-very-long-name running\r\n";
        assert_eq!(
            virsh().apply(out).unwrap(),
            json!([{"id": "a-very-long-name", "status": "running", "domain_id": "-"}])
        );
    }

    #[test]
    fn docker_ps_with_a_two_word_header_and_empty_cells() {
        let t = table(json!({"type": "table", "patterns": {
            "id": {"column": "container id"},
            "status": {"column": "STATUS"},
            "ports": {"column": "PORTS", "optional": true},
            "name": {"column": "NAMES"}
        }}));
        let out = "CONTAINER ID   IMAGE          COMMAND       STATUS          PORTS                  NAMES\n\
                   4c01db0b339c   ubuntu:22.04   \"bash\"        Up 16 seconds   0.0.0.0:80->80/tcp     web app\n\
                   d7886598dbe2   redis:7        \"redis-s…\"    Exited (0) 2h                          cache\n";
        assert_eq!(
            t.apply(out).unwrap(),
            json!([
                {"id": "4c01db0b339c", "status": "Up 16 seconds", "ports": "0.0.0.0:80->80/tcp", "name": "web app"},
                {"id": "d7886598dbe2", "status": "Exited (0) 2h", "name": "cache"}
            ])
        );
    }

    #[test]
    fn kubectl_layout_with_transforms_and_a_regex_narrowing_a_cell() {
        let t = table(json!({"type": "table", "patterns": {
            "name": {"column": "NAME"},
            "ready": {"column": "READY", "regex": "^(\\d+)/", "transform": "number"},
            "restarts": {"column": "RESTARTS", "regex": "^(\\d+)", "transform": "number"},
            "age": {"column": "AGE"}
        }}));
        let out = "NAME                     READY   STATUS    RESTARTS      AGE\n\
                   web-7d4b9c6f5d-x2x9k     1/1     Running   2 (3h ago)    5d\n";
        assert_eq!(
            t.apply(out).unwrap(),
            json!([{"name": "web-7d4b9c6f5d-x2x9k", "ready": 1, "restarts": 2, "age": "5d"}])
        );
    }

    #[test]
    fn boxed_and_separated_tables_split_on_their_bars() {
        let t = table(json!({"type": "table", "patterns": {
            "id": {"column": "ID"}, "name": {"column": "Name"}, "up": {"column": "Up", "transform": "boolean"}
        }}));
        let boxed = "+----+-----------+-----+\n| ID | Name      | Up  |\n+----+-----------+-----+\n\
                     | 7  | my vm     | yes |\n| 8  | other     | no  |\n+----+-----------+-----+\n";
        assert_eq!(
            t.apply(boxed).unwrap(),
            json!([{"id": "7", "name": "my vm", "up": true}, {"id": "8", "name": "other", "up": false}])
        );
        let tabs = table(json!({"type": "table", "separator": "\\t", "patterns": {
            "id": {"column": "ID"}, "name": {"column": "Name"}
        }}));
        assert_eq!(
            tabs.apply("ID\tName\n1\tvm one\n").unwrap(),
            json!([{"id": "1", "name": "vm one"}])
        );
    }

    #[test]
    fn a_declared_column_is_split_out_of_a_single_spaced_header() {
        let t = table(json!({"type": "table", "patterns": {
            "pid": {"column": "PID", "transform": "number"}, "cmd": {"column": "CMD"}
        }}));
        let out = "  PID TTY          TIME CMD\n 4242 pts/0    00:00:00 bash -l\n";
        assert_eq!(
            t.apply(out).unwrap(),
            json!([{"pid": 4242, "cmd": "bash -l"}])
        );
    }

    #[test]
    fn header_regex_skips_a_preamble_and_empty_output_is_an_empty_list() {
        let t = table(
            json!({"type": "table", "header": "^\\s*Name\\s+State", "patterns": {
                "name": {"column": "Name"}, "state": {"column": "State"}
            }}),
        );
        let out = "Connected to test:///default\n\nName   State\n----   -----\nvm 1   running\n";
        assert_eq!(
            t.apply(out).unwrap(),
            json!([{"name": "vm 1", "state": "running"}])
        );
        assert_eq!(t.apply("\n\n").unwrap(), json!([]));
        assert!(t.apply("error: nothing").is_err());
    }

    #[test]
    fn a_row_of_single_dashes_is_a_row_and_rule_lines_of_any_style_are_skipped() {
        let t = table(json!({"type": "table", "patterns": {
            "id": {"column": "Id"}, "name": {"column": "Name"}
        }}));
        let out = " Id   Name\n════ ══════\n -    -\n├───┼────┤\n 1    a b\n";
        assert_eq!(
            t.apply(out).unwrap(),
            json!([{"id": "-", "name": "-"}, {"id": "1", "name": "a b"}])
        );
    }

    #[test]
    fn a_missing_column_names_the_header_columns() {
        let t = table(json!({"type": "table", "patterns": {"id": {"column": "UUID"}}}));
        let err = t.apply(" Id   Name\n 1    a\n").unwrap_err();
        assert!(err.message().contains("no column 'uuid'"), "{err}");
        assert!(err.message().contains("id, name"), "{err}");
    }

    #[test]
    fn compile_errors_name_the_field() {
        let bad = |rules: Value| {
            let rules: ParseRules = serde_json::from_value(rules).unwrap();
            Table::compile(&rules).unwrap_err().message().to_string()
        };
        assert!(
            bad(json!({"type": "table", "patterns": {"a": {}}})).contains("needs a \"column\"")
        );
        assert!(
            bad(json!({"type": "table", "patterns": {"a": {"column": "A", "regex": "(x"}}}))
                .contains("invalid regex")
        );
        assert!(bad(json!({"type": "table", "header": "(", "patterns": {}})).contains("header"));
    }
}
