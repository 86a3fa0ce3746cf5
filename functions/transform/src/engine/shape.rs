//! What kind of query a transform is, read from its logical plan: row by row over one input
//! (each step needs only the new records), or stateful (aggregations, DISTINCT, joins, window
//! functions, ORDER BY/LIMIT: each step recomputes and emits the difference). Non-deterministic
//! functions are refused.

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};

/// How a query is maintained as its inputs grow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryShape {
    /// Projections and filters over a single input: new input rows map to new output rows.
    RowByRow,
    /// Anything else. `key_columns` are the output columns that identify a row (the GROUP BY
    /// columns of a top-level aggregation): a changed row with the same key is emitted as a
    /// correction (-C/+C) rather than a retraction and an append.
    Stateful { key_columns: Vec<String> },
}

/// Classifies `plan`; an error names a non-deterministic function.
pub fn classify(plan: &LogicalPlan) -> Result<QueryShape, String> {
    check_deterministic(plan)?;
    if is_row_by_row(plan)? {
        return Ok(QueryShape::RowByRow);
    }
    Ok(QueryShape::Stateful {
        key_columns: group_key_columns(plan),
    })
}

/// Refuses volatile functions (`random()`, `now()`, `uuid()`): a transform must give the same
/// result whenever it is replayed.
fn check_deterministic(plan: &LogicalPlan) -> Result<(), String> {
    let mut volatile = None;
    plan.apply(|node| {
        for expr in node.expressions() {
            expr.apply(|e| {
                if let Expr::ScalarFunction(function) = e
                    && function.func.signature().volatility
                        != datafusion::logical_expr::Volatility::Immutable
                    && is_time_or_random(function.func.name())
                {
                    volatile = Some(function.func.name().to_string());
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })?;
        }
        Ok(if volatile.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })
    .map_err(|error| error.to_string())?;
    match volatile {
        Some(name) => Err(format!(
            "`{name}()` is not deterministic; a transform must give the same result when replayed"
        )),
        None => Ok(()),
    }
}

fn is_time_or_random(name: &str) -> bool {
    weir_dataset::transform_sql::NON_DETERMINISTIC_FUNCTIONS.contains(&name)
}

/// The output columns that are GROUP BY columns of the top-level aggregation, looking through
/// projections, aliases and sorts.
fn group_key_columns(plan: &LogicalPlan) -> Vec<String> {
    top_aggregate(plan, false)
        .map(|(_, keys)| keys.into_iter().map(|(output, _)| output).collect())
        .unwrap_or_default()
}

/// The top-level aggregation of `plan`, found through projections, aliases and sorts; with the
/// output columns that are its GROUP BY expressions as they are, each with the index of its
/// expression. For `group_by_group` maintenance, filters (HAVING) are looked through too and a
/// sort with a limit is not (a limit ranks groups against each other).
pub(crate) fn top_aggregate(
    plan: &LogicalPlan,
    group_by_group: bool,
) -> Option<(&Aggregate, Vec<(String, usize)>)> {
    let mut node = plan;
    // Output column name -> name in the node below, through projections.
    let mut names: Vec<(String, String)> = plan
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.name().clone()))
        .collect();
    loop {
        match node {
            LogicalPlan::Projection(projection) => {
                let below: Vec<Option<String>> = projection
                    .expr
                    .iter()
                    .map(|expr| match expr.clone().unalias_nested().data {
                        Expr::Column(column) => Some(column.name),
                        _ => None,
                    })
                    .collect();
                names = names
                    .into_iter()
                    .filter_map(|(output, current)| {
                        let index = projection
                            .schema
                            .fields()
                            .iter()
                            .position(|f| f.name() == &current)?;
                        below[index].clone().map(|name| (output, name))
                    })
                    .collect();
                node = projection.input.as_ref();
            }
            LogicalPlan::Sort(sort) if sort.fetch.is_none() || !group_by_group => {
                node = sort.input.as_ref()
            }
            LogicalPlan::Filter(filter) if group_by_group => node = filter.input.as_ref(),
            LogicalPlan::SubqueryAlias(alias) => node = alias.input.as_ref(),
            LogicalPlan::Aggregate(aggregate) => {
                let groups = aggregate.group_expr.len();
                let keys = names
                    .into_iter()
                    .filter_map(|(output, current)| {
                        let index = aggregate
                            .schema
                            .fields()
                            .iter()
                            .take(groups)
                            .position(|f| f.name() == &current)?;
                        Some((output, index))
                    })
                    .collect();
                return Some((aggregate, keys));
            }
            _ => return None,
        }
    }
}

/// Whether `plan` only maps rows one to one or filters them: projections and filters over a
/// single table, without sub-queries.
pub(crate) fn is_row_by_row(plan: &LogicalPlan) -> Result<bool, String> {
    let mut scans = 0;
    let mut row_by_row = true;
    plan.apply(|node| {
        match node {
            LogicalPlan::TableScan(_) => scans += 1,
            LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_) => {
            }
            _ => row_by_row = false,
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|error| error.to_string())?;
    // Sub-queries in expressions (`IN (SELECT ...)`) read whole tables.
    let mut has_subquery = false;
    plan.apply(|node| {
        for expr in node.expressions() {
            expr.apply(|e| {
                if matches!(
                    e,
                    Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
                ) {
                    has_subquery = true;
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .map_err(|error| datafusion::error::DataFusionError::Plan(error.to_string()))?;
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|error| error.to_string())?;
    Ok(row_by_row && scans == 1 && !has_subquery)
}
