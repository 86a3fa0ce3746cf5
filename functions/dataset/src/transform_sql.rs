//! Checks of a derivative's transform SQL that need no input schema, so that what could never
//! be computed (or never be replayed) is refused when the dataset is created: functions whose
//! result depends on when they run, and outputs that take the system columns the transform
//! assigns.

use datafusion::sql::parser::{DFParserBuilder, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    Expr, SelectItem, SetExpr, Statement, WildcardAdditionalOptions,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use weir_odf::Transform;

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

pub(crate) fn check_derivative_sql(transform: &Transform, at: &str) -> Result<(), DefinitionError> {
    let Transform::Sql(sql) = transform;
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
