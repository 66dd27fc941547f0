//! What a provider file says about parsing: the `parse_rules` types, read by serde and
//! compiled by [`super::CompiledRules`]. They live here, not in `provider`, so that `parse`
//! depends on nothing of `provider` (which re-exports them): the provider file is built from
//! parse rules, never the other way round.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `parse_rules`: how an action's raw output becomes JSON (§10 of the excerpt).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ParseRules {
    /// `object`, `array`, `properties`, `json` or `table`.
    #[serde(rename = "type")]
    pub kind: RuleKind,
    /// Field name → pattern, in output order.
    #[serde(default)]
    pub patterns: IndexMap<String, Pattern>,
    /// For `array`: the regex records are split on (default `\n`). For `table`: the regex
    /// each line is split into cells on (default: columns at the header words' positions).
    #[serde(default)]
    pub separator: Option<String>,
    /// For `table`: a regex matching the header line (default: the first line that is neither
    /// blank nor a rule line).
    #[serde(default)]
    pub header: Option<String>,
    /// For `properties`: list fields whose items are numbered in the output.
    #[serde(default)]
    pub array_patterns: IndexMap<String, ArrayPattern>,
    /// For `json`: a JSON Pointer to the list of results (`/servers`); without it the result
    /// is one object. A `*` segment flattens every element (`/Reservations/*/Instances`).
    #[serde(default)]
    pub items: Option<String>,
}

/// The parser type of a rule set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// One object; each pattern matched once against the whole output.
    Object,
    /// A list of objects; the output is split into records first.
    Array,
    /// An object with numbered list fields (`array_patterns`).
    Properties,
    /// JSON output read by JSON Pointer (an extension): an object, or a list with `items`.
    Json,
    /// A column-aligned table read by its header line (an extension): a list of rows.
    Table,
}

/// One field's extraction rule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Pattern {
    /// The regex (multi-line: `^`/`$` match at line boundaries); required except in `json`
    /// and `table` rules, where it optionally narrows the text at `pointer` or the cell.
    #[serde(default)]
    pub regex: Option<String>,
    /// For `json` rules: the JSON Pointer (RFC 6901) of the field, relative to the item;
    /// `*` segments collect every element into a list.
    #[serde(default)]
    pub pointer: Option<String>,
    /// For `table` rules: the header text of the field's column (case and spacing ignored).
    #[serde(default)]
    pub column: Option<String>,
    /// Capture group to take; defaults to the last group, or the whole match without groups.
    #[serde(default)]
    pub group: Option<usize>,
    /// A missing optional field is omitted instead of failing the action.
    #[serde(default)]
    pub optional: bool,
    /// `boolean`, `number` or `json`.
    #[serde(default)]
    pub transform: Option<String>,
}

/// A numbered list inside a `properties` result (`Disk-0-ID`, `nic1=`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct ArrayPattern {
    /// The text numbered items start with (documentation; matching is by `object` regexes).
    #[serde(default)]
    pub prefix: Option<String>,
    /// Regex the index (each object regex's first capture group) must match; default `\d+`.
    #[serde(default)]
    pub index: Option<String>,
    /// Field name → pattern for each item; the first capture group is the item's index.
    #[serde(default)]
    pub object: IndexMap<String, Pattern>,
}
