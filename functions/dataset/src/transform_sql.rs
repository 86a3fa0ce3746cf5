//! Checks of a derivative's transform SQL that need no input schema, so that what could never
//! be computed (or never be replayed) is refused when the dataset is created: functions whose
//! result depends on when they run, and outputs that take the system columns the transform
//! assigns.

use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Query, SelectItem, SetExpr, Statement, TableFactor, Visit, Visitor,
    WildcardAdditionalOptions,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use weir_odf::{SetTransform, Transform};

use crate::definition::DefinitionError;
use crate::slices::{OFFSET_COLUMN, OPERATION_TYPE_COLUMN, SYSTEM_TIME_COLUMN};

/// Functions that give another result on every run (DataFusion marks `now()` as stable, fixed
/// within one query, which is not enough across replays).
pub const NON_DETERMINISTIC_FUNCTIONS: &[&str] = &[
    "random",
    "uuid",
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "today",
];

fn refuse(path: &str, message: String) -> DefinitionError {
    DefinitionError {
        path: path.to_string(),
        message,
    }
}

pub(crate) fn check_derivative_sql(set: &SetTransform, at: &str) -> Result<(), DefinitionError> {
    let Transform::Sql(sql) = &set.transform;
    if !sql.engine.eq_ignore_ascii_case("datafusion") {
        return Err(refuse(
            &format!("{at}.engine"),
            format!(
                "engine `{}` is not available on this node; `datafusion` is",
                sql.engine
            ),
        ));
    }
    // The names a query may read: the inputs' aliases and the other steps' aliases. Inputs
    // without an alias (named by id) leave the names unknown, and the check out.
    let mut known: Option<Vec<String>> =
        set.inputs.iter().map(|input| input.alias.clone()).collect();
    if let Some(names) = &mut known {
        names.extend(
            sql.queries
                .iter()
                .flatten()
                .filter_map(|step| step.alias.clone()),
        );
    }
    let mut steps: Vec<(String, &str, bool)> = Vec::new();
    if let Some(query) = &sql.query {
        steps.push((format!("{at}.query"), query, true));
    }
    for (index, step) in sql.queries.iter().flatten().enumerate() {
        steps.push((
            format!("{at}.queries[{index}].query"),
            &step.query,
            step.alias.is_none(),
        ));
    }
    for (path, query, is_output) in steps {
        check_deterministic(&path, query)?;
        if let Some(known) = &known {
            check_relations(&path, query, known)?;
        }
        if is_output {
            check_output(&path, query)?;
        }
    }
    Ok(())
}

fn check_deterministic(path: &str, query: &str) -> Result<(), DefinitionError> {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, query).tokenize() else {
        return Ok(()); // the parse check reports it
    };
    for token in tokens {
        if let Token::Word(word) = token
            && word.quote_style.is_none()
            && NON_DETERMINISTIC_FUNCTIONS.contains(&word.value.to_ascii_lowercase().as_str())
        {
            return Err(refuse(
                path,
                format!(
                    "`{}` is not deterministic; a transform must give the same result whenever it is replayed",
                    word.value
                ),
            ));
        }
    }
    Ok(())
}

/// Every table a query reads is an input, another step or one of its own CTEs.
fn check_relations(path: &str, query: &str, known: &[String]) -> Result<(), DefinitionError> {
    let Ok(statements) = DFParserBuilder::new(query)
        .build()
        .and_then(|mut parser| parser.parse_statements())
    else {
        return Ok(());
    };
    let Some(DFStatement::Statement(statement)) = statements.front() else {
        return Ok(());
    };
    let mut names = Relations::default();
    let _ = statement.visit(&mut names);
    for (name, quoted) in names.read {
        let found = names.ctes.iter().chain(known).any(|known| {
            if quoted {
                *known == name
            } else {
                known.eq_ignore_ascii_case(&name)
            }
        });
        if !found {
            return Err(refuse(
                path,
                format!(
                    "the query reads `{name}`, which is not an input of the transform (inputs and steps: {})",
                    known.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Tables a statement reads (name, quoted) and the CTEs it defines.
#[derive(Default)]
struct Relations {
    read: Vec<(String, bool)>,
    ctes: Vec<String>,
}

impl Visitor for Relations {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            self.ctes.extend(
                with.cte_tables
                    .iter()
                    .map(|cte| cte.alias.name.value.clone()),
            );
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
        {
            let parts: Vec<_> = name.0.iter().filter_map(|part| part.as_ident()).collect();
            if let [ident] = parts.as_slice() {
                self.read
                    .push((ident.value.clone(), ident.quote_style.is_some()));
            } else {
                let text = name.to_string();
                self.read.push((text, true));
            }
        }
        ControlFlow::Continue(())
    }
}

fn check_output(path: &str, query: &str) -> Result<(), DefinitionError> {
    let Ok(statements) = DFParserBuilder::new(query)
        .build()
        .and_then(|mut parser| parser.parse_statements())
    else {
        return Ok(());
    };
    let Some(DFStatement::Statement(statement)) = statements.front() else {
        return Ok(());
    };
    let Statement::Query(query) = statement.as_ref() else {
        return Ok(());
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Ok(());
    };
    let reserved = [OFFSET_COLUMN, OPERATION_TYPE_COLUMN, SYSTEM_TIME_COLUMN];
    for item in &select.projection {
        let name = match item {
            SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.clone()),
            SelectItem::UnnamedExpr(Expr::Identifier(ident)) => Some(ident.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                parts.last().map(|ident| ident.value.clone())
            }
            SelectItem::Wildcard(options) | SelectItem::QualifiedWildcard(_, options) => {
                if !excludes_system_columns(options) {
                    return Err(refuse(
                        path,
                        "`*` would output `offset`, `op` and `system_time`, which the transform assigns; name the columns, or use `* EXCLUDE (\"offset\", op, system_time)`".to_string(),
                    ));
                }
                None
            }
            _ => None,
        };
        if let Some(name) = name
            && reserved.contains(&name.as_str())
        {
            return Err(refuse(
                path,
                format!("the output may not have a column `{name}`: the transform assigns it"),
            ));
        }
    }
    Ok(())
}

fn excludes_system_columns(options: &WildcardAdditionalOptions) -> bool {
    use datafusion::sql::sqlparser::ast::ExcludeSelectItem;
    let Some(exclude) = &options.opt_exclude else {
        return false;
    };
    let excluded: Vec<String> = match exclude {
        ExcludeSelectItem::Single(name) => vec![last_part(name)],
        ExcludeSelectItem::Multiple(names) => names.iter().map(last_part).collect(),
    };
    [OFFSET_COLUMN, OPERATION_TYPE_COLUMN, SYSTEM_TIME_COLUMN]
        .iter()
        .all(|column| excluded.iter().any(|name| name == column))
}

fn last_part(name: &datafusion::sql::sqlparser::ast::ObjectName) -> String {
    name.0
        .last()
        .and_then(|part| part.as_ident())
        .map(|ident| ident.value.clone())
        .unwrap_or_default()
}
