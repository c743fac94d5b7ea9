//! A `meta.k8s.io/v1` Table printed as kubectl prints it: upper-case
//! headers, the `-o wide` columns only when asked, a NAMESPACE column
//! first with `-A`, aligned by the same tabwriter settings.

use serde::Deserialize;
use serde_json::Value;

use crate::cli::table::{get_table, with_namespace};
use crate::cli::NamespaceFilter;

/// A Table response (the fields the CLI prints).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Table {
    /// The columns, in order.
    pub column_definitions: Vec<ColumnDefinition>,
    /// The rows.
    #[serde(default)]
    pub rows: Vec<Row>,
}

/// One column.
#[derive(Debug, Deserialize)]
pub struct ColumnDefinition {
    /// Its header (kubectl upper-cases it).
    pub name: String,
    /// 0: always shown; more: only with `-o wide`.
    #[serde(default)]
    pub priority: i32,
}

/// One row.
#[derive(Debug, Deserialize)]
pub struct Row {
    /// The cells, one per column.
    pub cells: Vec<Value>,
    /// The object's metadata (`includeObject=Metadata`).
    #[serde(default)]
    pub object: Option<Value>,
}

fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<none>".to_owned(),
        other => other.to_string(),
    }
}

/// The table as `kubectl get` prints it (`wide`: every column; `ns`:
/// with [`NamespaceFilter::All`] a NAMESPACE column first), through the
/// same table code as the file-backed `get`.
pub fn render(table: &Table, wide: bool, ns: &NamespaceFilter) -> String {
    let shown: Vec<usize> = table
        .column_definitions
        .iter()
        .enumerate()
        .filter(|(_, c)| wide || c.priority == 0)
        .map(|(i, _)| i)
        .collect();
    let header: Vec<String> = shown
        .iter()
        .map(|&i| table.column_definitions[i].name.to_uppercase())
        .collect();
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let rows = table
        .rows
        .iter()
        .map(|row| {
            let namespace = row
                .object
                .as_ref()
                .and_then(|o| o.pointer("/metadata/namespace"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let cells = shown
                .iter()
                .map(|&i| row.cells.get(i).map(cell).unwrap_or_default())
                .collect();
            with_namespace(ns, namespace, cells)
        })
        .collect();
    get_table(ns, &header, rows)
}
