//! A search [`Expr`] as a SQL condition over `datasets` joined with `dataset_statistics s` and
//! `dataset_docs g`. Every value becomes a numbered placeholder bound in order; the SQL text
//! holds only our own column names and operators.

use super::{CompareOp, Expr, Field, SearchError, Value};

/// A value to bind to the next placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    Text(String),
    Integer(i64),
}

/// A condition and its binds; placeholders are numbered from the `first` given to `compile`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub sql: String,
    pub binds: Vec<Bind>,
    /// The joins the condition needs after `FROM datasets` (only the tables it names).
    pub joins: String,
}

pub fn compile(expr: &Expr, first: usize) -> Result<Compiled, SearchError> {
    let mut compiler = Compiler {
        binds: Vec::new(),
        first,
        statistics_join: false,
        docs_join: false,
    };
    let sql = compiler.expr(expr)?;
    let mut joins = String::new();
    if compiler.statistics_join {
        joins.push_str(" LEFT JOIN dataset_statistics s ON s.dataset_id = datasets.id");
    }
    if compiler.docs_join {
        joins.push_str(" LEFT JOIN dataset_docs g ON g.dataset_id = datasets.id");
    }
    Ok(Compiled {
        sql,
        binds: compiler.binds,
        joins,
    })
}

struct Compiler {
    binds: Vec<Bind>,
    first: usize,
    /// Whether the condition reads `s.` or `g.` columns, which need their join.
    statistics_join: bool,
    docs_join: bool,
}

/// A documentation column as a condition on `dataset_docs d` alone: used for conditions that
/// no dataset without documentation meets (an `=`, `IN` or `LIKE` that the empty text does
/// not satisfy), as an indexed semi-join instead of a join over every dataset.
fn docs_column(field: Field) -> Option<&'static str> {
    match field {
        Field::License => Some("lower(COALESCE(d.license, ''))"),
        Field::Description => Some("lower(COALESCE(d.description, ''))"),
        _ => None,
    }
}

fn docs_semi_join(condition: &str) -> String {
    format!("datasets.id IN (SELECT d.dataset_id FROM dataset_docs d WHERE {condition})")
}

/// Escapes `\`, `%` and `_` so that `text` matches itself in a LIKE with `ESCAPE '\'`.
pub fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `[low, high)` holding exactly the lowercase ASCII letter-and-digit words that start with
/// `word`, in byte order and in the locale orders of PostgreSQL alike (digits before letters,
/// no punctuation involved): `high` is `word` with trailing `z`s dropped and its last character
/// moved to the next one (`9` to `a`); `None` when only `z`s remain (every greater word starts
/// with `word`). `None` for other words.
pub fn prefix_range(word: &str) -> Option<(String, Option<String>)> {
    if word.is_empty()
        || !word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return None;
    }
    let mut high: Vec<u8> = word.trim_end_matches('z').bytes().collect();
    let Some(last) = high.pop() else {
        return Some((word.to_string(), None));
    };
    high.push(if last == b'9' { b'a' } else { last + 1 });
    Some((word.to_string(), Some(String::from_utf8(high).ok()?)))
}

fn column(field: Field) -> &'static str {
    match field {
        Field::Name => "lower(datasets.name)",
        Field::Owner => "lower(datasets.owner_name)",
        Field::Kind => "lower(datasets.kind)",
        Field::Visibility => "lower(datasets.visibility)",
        Field::License => "lower(COALESCE(g.license, ''))",
        Field::Description => "lower(COALESCE(g.description, ''))",
        Field::NumRecords => "COALESCE(s.num_records, 0)",
        Field::DataSize => "COALESCE(s.data_size_bytes, 0)",
        Field::LastUpdated => "s.last_updated",
        Field::Keywords => "k.keyword",
        Field::OpenIssues => {
            "(SELECT COUNT(*) FROM governance_threads gt WHERE gt.dataset_id = datasets.id \
             AND gt.kind = 'issue' AND gt.state = 'open')"
        }
    }
}

/// Keywords are a set: a condition on them holds when some keyword satisfies it.
fn any_keyword(condition: &str, negated: bool) -> String {
    format!(
        "{}EXISTS (SELECT 1 FROM dataset_keywords k WHERE k.dataset_id = datasets.id AND {condition})",
        if negated { "NOT " } else { "" }
    )
}

impl Compiler {
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.first + self.binds.len() - 1)
    }

    /// A field's column in the joined form, noting the join it needs.
    fn column(&mut self, field: Field) -> &'static str {
        match field {
            Field::NumRecords | Field::DataSize | Field::LastUpdated => self.statistics_join = true,
            Field::License | Field::Description => self.docs_join = true,
            _ => {}
        }
        column(field)
    }

    fn value(&mut self, value: &Value) -> String {
        match value {
            Value::Text(text) => self.bind(Bind::Text(text.clone())),
            Value::Integer(number) => self.bind(Bind::Integer(*number)),
        }
    }

    fn expr(&mut self, expr: &Expr) -> Result<String, SearchError> {
        Ok(match expr {
            Expr::And(left, right) => format!("({} AND {})", self.expr(left)?, self.expr(right)?),
            Expr::Or(left, right) => format!("({} OR {})", self.expr(left)?, self.expr(right)?),
            Expr::Not(inner) => format!("(NOT {})", self.expr(inner)?),
            Expr::Compare(Field::Keywords, op, value) => {
                let placeholder = self.value(value);
                match op {
                    CompareOp::Eq => any_keyword(&format!("k.keyword = {placeholder}"), false),
                    CompareOp::Ne => any_keyword(&format!("k.keyword = {placeholder}"), true),
                    _ => {
                        return Err(SearchError {
                            position: 0,
                            message: "`keywords` compares with =, !=, LIKE and IN".into(),
                        });
                    }
                }
            }
            Expr::Compare(field, CompareOp::Eq, value @ Value::Text(text))
                if !text.is_empty() && docs_column(*field).is_some() =>
            {
                let placeholder = self.value(value);
                let column = docs_column(*field).unwrap_or_default();
                docs_semi_join(&format!("{column} = {placeholder}"))
            }
            Expr::Compare(field, op, value) => {
                let placeholder = self.value(value);
                format!("{} {} {placeholder}", self.column(*field), op.sql())
            }
            Expr::Like {
                field,
                pattern,
                negated,
            } => {
                let placeholder = self.bind(Bind::Text(pattern.clone()));
                let matches_empty = pattern.chars().all(|c| c == '%');
                if let Some(column) = docs_column(*field)
                    && !negated
                    && !matches_empty
                {
                    return Ok(docs_semi_join(&format!(
                        "{column} LIKE {placeholder} ESCAPE '\\'"
                    )));
                }
                let condition = format!("{} LIKE {placeholder} ESCAPE '\\'", self.column(*field));
                match field {
                    Field::Keywords => any_keyword(&condition, *negated),
                    _ if *negated => format!("(NOT {condition})"),
                    _ => condition,
                }
            }
            Expr::In {
                field,
                values,
                negated,
            } => {
                let list: Vec<String> = values.iter().map(|value| self.value(value)).collect();
                let has_empty = values
                    .iter()
                    .any(|value| *value == Value::Text(String::new()));
                if let Some(column) = docs_column(*field)
                    && !negated
                    && !has_empty
                {
                    return Ok(docs_semi_join(&format!(
                        "{column} IN ({})",
                        list.join(", ")
                    )));
                }
                let condition = format!("{} IN ({})", self.column(*field), list.join(", "));
                match field {
                    Field::Keywords => any_keyword(&condition, *negated),
                    _ if *negated => format!("(NOT {condition})"),
                    _ => condition,
                }
            }
            Expr::Text(words) => {
                let mut all = Vec::new();
                for word in words {
                    let inside = self.bind(Bind::Text(format!("%{}%", escape_like(word))));
                    // Words starting with `word`: an index range where the word is ASCII (a
                    // LIKE prefix cannot use PostgreSQL's index under a locale collation, nor
                    // a prepared statement's generic plan), a LIKE otherwise.
                    let prefix = match prefix_range(word) {
                        Some((low, Some(high))) => {
                            let low = self.bind(Bind::Text(low));
                            let high = self.bind(Bind::Text(high));
                            format!("t.term >= {low} AND t.term < {high}")
                        }
                        Some((low, None)) => format!("t.term >= {}", self.bind(Bind::Text(low))),
                        None => format!(
                            "t.term LIKE {} ESCAPE '\\'",
                            self.bind(Bind::Text(format!("{}%", escape_like(word))))
                        ),
                    };
                    all.push(format!(
                        "(lower(datasets.name) LIKE {inside} ESCAPE '\\' \
                         OR lower(datasets.owner_name) LIKE {inside} ESCAPE '\\' \
                         OR EXISTS (SELECT 1 FROM dataset_terms t WHERE t.dataset_id = datasets.id \
                         AND {prefix}) \
                         OR EXISTS (SELECT 1 FROM governance_threads gt \
                         WHERE gt.dataset_id = datasets.id AND gt.kind = 'issue' \
                         AND lower(gt.title) LIKE {inside} ESCAPE '\\'))"
                    ));
                }
                format!("({})", all.join(" AND "))
            }
        })
    }
}
