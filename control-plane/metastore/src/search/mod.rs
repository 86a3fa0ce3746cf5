//! Dataset search expressions (`GET /datasets?search=…`): a safe subset of SQL `WHERE` over a
//! whitelist of fields, parsed by our own parser (`lexer`, `parser`) into an [`Expr`], which
//! `compile` turns into parameterized SQL: values are always bound, never spliced into the text.
//!
//! ```text
//! expr       := or
//! or         := and ("OR" and)*
//! and        := not ("AND" not)*
//! not        := "NOT" not | primary
//! primary    := "(" expr ")" | text | comparison
//! comparison := field op value | field ["NOT"] "LIKE" string | field ["NOT"] "IN" "(" value ("," value)* ")"
//! text       := string                      -- full-text: every word must occur
//! op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! value      := string | integer
//! ```
//!
//! An input of plain words only (`rain gauge`) is a full-text query, like `'rain gauge'`.

pub mod compile;
mod lexer;
mod parser;

pub use parser::parse;

/// A field a search may name, with the type of values it compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Name,
    Owner,
    Kind,
    Keywords,
    License,
    Description,
    NumRecords,
    DataSize,
    LastUpdated,
    Visibility,
    OpenIssues,
}

impl Field {
    pub const ALL: [Field; 11] = [
        Field::Name,
        Field::Owner,
        Field::Kind,
        Field::Keywords,
        Field::License,
        Field::Description,
        Field::NumRecords,
        Field::DataSize,
        Field::LastUpdated,
        Field::Visibility,
        Field::OpenIssues,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::Owner => "owner",
            Field::Kind => "kind",
            Field::Keywords => "keywords",
            Field::License => "license",
            Field::Description => "description",
            Field::NumRecords => "numRecords",
            Field::DataSize => "dataSize",
            Field::LastUpdated => "lastUpdated",
            Field::Visibility => "visibility",
            Field::OpenIssues => "openIssues",
        }
    }

    /// Field names compare case-insensitively (`numrecords`, `NUMRECORDS`).
    pub fn parse(text: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|field| field.name().eq_ignore_ascii_case(text))
    }

    pub fn kind(self) -> FieldKind {
        match self {
            Field::NumRecords | Field::DataSize | Field::OpenIssues => FieldKind::Integer,
            Field::LastUpdated => FieldKind::Time,
            _ => FieldKind::Text,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Compared case-insensitively.
    Text,
    Integer,
    /// Given as RFC 3339 text or a `YYYY-MM-DD` date (midnight UTC); kept as epoch millis.
    Time,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    pub fn sql(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// A value after checking it against its field's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// Lowercased for text fields.
    Text(String),
    Integer(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Compare(Field, CompareOp, Value),
    /// `pattern` keeps SQL's `%` and `_` wildcards, `\` escapes them.
    Like {
        field: Field,
        pattern: String,
        negated: bool,
    },
    In {
        field: Field,
        values: Vec<Value>,
        negated: bool,
    },
    /// Every word must occur in the name, description, keywords, readme or an issue's title.
    Text(Vec<String>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

/// Why an expression was refused, with the character position (0-based) where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct SearchError {
    pub position: usize,
    pub message: String,
}

/// Bounds that keep an expression cheap to parse and to run.
pub const MAX_EXPRESSION_CHARS: usize = 2_000;
pub const MAX_DEPTH: usize = 32;
pub const MAX_TERMS: usize = 64;

/// Splits text into lowercase words of letters and digits, as the full-text index keeps them.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests;
