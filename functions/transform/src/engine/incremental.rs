//! Group-by-group maintenance of a grouped aggregation over one input (spec "Derivative
//! Transformations", maintained as the changelog model asks): a step finds the groups that the
//! new input records touch, computes only those groups again from the input's history (reading
//! only the files and row groups that can hold them), and diffs them against what the previous
//! step emitted for them (the checkpoint holds the previous result). Untouched groups cost
//! nothing but the copy of their previous rows into the new checkpoint.
//!
//! Applies when the query is an aggregation with GROUP BY (under projections, HAVING filters and
//! sorts without a limit) over row-by-row operators on a single input whose records are all
//! appends, and every GROUP BY expression is an output column. Anything else is computed in
//! full; results are the same either way.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{BooleanArray, RecordBatch};
use arrow::compute::{concat_batches, filter_record_batch};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{RowConverter, SortField};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, NullEquality, ScalarValue};
use datafusion::datasource::{MemTable, provider_as_source};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    Aggregate, Distinct, Expr, JoinType, LogicalPlan, LogicalPlanBuilder, col, lit,
};
use datafusion::prelude::SessionContext;

use super::shape::{is_row_by_row, top_aggregate};

/// How a grouped query's output relates to its GROUP BY: `key_outputs[i]` is the output column
/// holding GROUP BY expression `i`.
#[derive(Debug, Clone)]
pub struct Grouped {
    pub key_outputs: Vec<String>,
}

/// Whether `plan` can be maintained group by group.
pub fn grouped(plan: &LogicalPlan) -> Option<Grouped> {
    let (aggregate, keys) = top_aggregate(plan, true)?;
    let groups = aggregate.group_expr.len();
    if groups == 0
        || aggregate
            .group_expr
            .iter()
            .any(|expr| matches!(expr, Expr::GroupingSet(_)))
        || !is_row_by_row(&aggregate.input).ok()?
    {
        return None;
    }
    let mut key_outputs = vec![None; groups];
    for (output, index) in keys {
        key_outputs[index].get_or_insert(output);
    }
    Some(Grouped {
        key_outputs: key_outputs.into_iter().collect::<Option<Vec<_>>>()?,
    })
}

/// `plan` with `SELECT DISTINCT` written as the aggregation it is (GROUP BY every column), so
/// that it is maintained group by group too.
pub fn distinct_as_aggregate(plan: &LogicalPlan) -> Result<LogicalPlan> {
    let rewritten = plan.clone().transform_up(|node| {
        let LogicalPlan::Distinct(Distinct::All(input)) = &node else {
            return Ok(Transformed::no(node));
        };
        let group_expr = input
            .schema()
            .columns()
            .into_iter()
            .map(Expr::Column)
            .collect();
        let aggregate = Aggregate::try_new(input.clone(), group_expr, Vec::new())?;
        Ok(Transformed::yes(LogicalPlan::Aggregate(aggregate)))
    })?;
    Ok(rewritten.data)
}

fn key_name(index: usize) -> String {
    format!("__weir_key_{index}")
}

fn touched_name(index: usize) -> String {
    format!("__weir_touched_{index}")
}

/// The distinct GROUP BY values of the rows `plan`'s aggregation reads (over the new records
/// only, they are the groups a step touches), as columns `__weir_touched_<i>`.
pub async fn group_values(session: &SessionContext, plan: &LogicalPlan) -> Result<RecordBatch> {
    let (aggregate, _) = top_aggregate(plan, true)
        .ok_or_else(|| DataFusionError::Plan("the query has no aggregation".to_string()))?;
    let keys = aggregate
        .group_expr
        .iter()
        .enumerate()
        .map(|(index, expr)| expr.clone().alias(touched_name(index)));
    let plan = LogicalPlanBuilder::from(aggregate.input.as_ref().clone())
        .project(keys)?
        .distinct()?
        .build()?;
    let schema: SchemaRef = Arc::new(plan.schema().as_arrow().clone());
    let batches = session.execute_logical_plan(plan).await?.collect().await?;
    Ok(concat_batches(&schema, &batches)?)
}

/// `plan` computing only the groups in `touched` (from [`group_values`]): the aggregation reads
/// only the rows whose GROUP BY values are among them.
pub fn only_groups(plan: &LogicalPlan, touched: &RecordBatch) -> Result<LogicalPlan> {
    let table = MemTable::try_new(touched.schema(), vec![vec![touched.clone()]])?;
    let keys =
        LogicalPlanBuilder::scan("__weir_touched", provider_as_source(Arc::new(table)), None)?
            .build()?;
    let mut keys = Some(keys);
    let rewritten = plan.clone().transform_down(|node| {
        let LogicalPlan::Aggregate(aggregate) = &node else {
            return Ok(Transformed::no(node));
        };
        let Some(keys) = keys.take() else {
            return Ok(Transformed::no(node));
        };
        let ranges = range_filter(&aggregate.group_expr, touched)?;
        let input = restrict(&aggregate.input, &aggregate.group_expr, keys, ranges)?;
        let aggregate = Aggregate::try_new(
            Arc::new(input),
            aggregate.group_expr.clone(),
            aggregate.aggr_expr.clone(),
        )?;
        Ok(Transformed::new(
            LogicalPlan::Aggregate(aggregate),
            true,
            TreeNodeRecursion::Jump,
        ))
    })?;
    Ok(rewritten.data)
}

/// `input` semi-joined with `keys` on its GROUP BY values (NULL matching NULL), after `ranges`.
fn restrict(
    input: &LogicalPlan,
    group_expr: &[Expr],
    keys: LogicalPlan,
    ranges: Option<Expr>,
) -> Result<LogicalPlan> {
    let columns: Vec<Expr> = input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let mut builder = LogicalPlanBuilder::from(input.clone());
    if let Some(ranges) = ranges {
        builder = builder.filter(ranges)?;
    }
    let mut with_keys = columns.clone();
    with_keys.extend(
        group_expr
            .iter()
            .enumerate()
            .map(|(index, expr)| expr.clone().alias(key_name(index))),
    );
    let left: Vec<Column> = (0..group_expr.len())
        .map(|index| Column::from_name(key_name(index)))
        .collect();
    let right: Vec<Column> = (0..group_expr.len())
        .map(|index| Column::new(Some("__weir_touched"), touched_name(index)))
        .collect();
    builder
        .project(with_keys)?
        .join_detailed(
            keys,
            JoinType::LeftSemi,
            (left, right),
            None,
            NullEquality::NullEqualsNull,
        )?
        .project(columns)?
        .build()
}

/// Bounds on the input columns that GROUP BY reads as they are (`col`) or in time buckets
/// (`date_trunc('<unit>', col)` over UTC times), so that only the files and row groups whose
/// statistics can hold a touched group are read. A superset of the touched rows; the semi join
/// keeps exactly them.
fn range_filter(group_expr: &[Expr], touched: &RecordBatch) -> Result<Option<Expr>> {
    let mut bounds = Vec::new();
    for (index, expr) in group_expr.iter().enumerate() {
        let values = touched.column(index);
        if values.null_count() > 0 || values.is_empty() {
            continue;
        }
        let Some((min, max)) = min_max(values)? else {
            continue;
        };
        match expr {
            Expr::Column(column) => {
                bounds.push(col(column.clone()).gt_eq(lit(min)));
                bounds.push(col(column.clone()).lt_eq(lit(max)));
            }
            Expr::ScalarFunction(ScalarFunction { func, args })
                if func.name() == "date_trunc" && args.len() == 2 =>
            {
                let (Expr::Literal(ScalarValue::Utf8(Some(unit)), _), Expr::Column(column)) =
                    (&args[0], &args[1])
                else {
                    continue;
                };
                let utc = match values.data_type() {
                    DataType::Timestamp(_, None) => true,
                    DataType::Timestamp(_, Some(tz)) => {
                        matches!(tz.as_ref(), "UTC" | "+00:00" | "Z")
                    }
                    _ => false,
                };
                let Some(width) = bucket_width(unit).filter(|_| utc) else {
                    continue;
                };
                // A bucket starting at `min` holds times from `min`; one starting at `max`
                // holds times before `max + width`.
                bounds.push(col(column.clone()).gt_eq(lit(min)));
                bounds.push(col(column.clone()).lt(lit(max) + lit(width)));
            }
            _ => {}
        }
    }
    Ok(bounds.into_iter().reduce(Expr::and))
}

fn bucket_width(unit: &str) -> Option<ScalarValue> {
    use arrow::datatypes::IntervalMonthDayNano as Interval;
    let nanos = |seconds: i64| Interval::new(0, 0, seconds * 1_000_000_000);
    let width = match unit.to_ascii_lowercase().as_str() {
        "second" => nanos(1),
        "minute" => nanos(60),
        "hour" => nanos(3600),
        "day" => Interval::new(0, 1, 0),
        "week" => Interval::new(0, 7, 0),
        "month" => Interval::new(1, 0, 0),
        "quarter" => Interval::new(3, 0, 0),
        "year" => Interval::new(12, 0, 0),
        _ => return None,
    };
    Some(ScalarValue::IntervalMonthDayNano(Some(width)))
}

fn min_max(values: &dyn arrow::array::Array) -> Result<Option<(ScalarValue, ScalarValue)>> {
    let mut range: Option<(ScalarValue, ScalarValue)> = None;
    for row in 0..values.len() {
        let value = ScalarValue::try_from_array(values, row)?;
        range = Some(match range {
            None => (value.clone(), value),
            Some((min, max)) => {
                let min = match value.partial_cmp(&min) {
                    Some(std::cmp::Ordering::Less) => value.clone(),
                    Some(_) => min,
                    None => return Ok(None),
                };
                let max = match value.partial_cmp(&max) {
                    Some(std::cmp::Ordering::Greater) => value,
                    Some(_) => max,
                    None => return Ok(None),
                };
                (min, max)
            }
        });
    }
    Ok(range)
}

/// The previous result split into the rows of touched groups and the others.
pub fn split_by_groups(
    schema: &SchemaRef,
    previous: &[RecordBatch],
    key_outputs: &[String],
    touched: &RecordBatch,
) -> std::result::Result<(RecordBatch, RecordBatch), arrow::error::ArrowError> {
    let previous = concat_batches(schema, previous)?;
    let fields: Vec<SortField> = touched
        .schema()
        .fields()
        .iter()
        .map(|field| SortField::new(field.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let touched_rows = converter.convert_columns(touched.columns())?;
    let touched_set: HashSet<&[u8]> = touched_rows.iter().map(|row| row.data()).collect();
    let key_columns = key_outputs
        .iter()
        .zip(touched.schema().fields())
        .map(|(name, field)| {
            let column = previous.column(previous.schema().index_of(name)?);
            arrow::compute::cast(column, field.data_type())
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let previous_rows = converter.convert_columns(&key_columns)?;
    let in_touched: BooleanArray = previous_rows
        .iter()
        .map(|row| Some(touched_set.contains(row.data())))
        .collect();
    let others = arrow::compute::not(&in_touched)?;
    Ok((
        filter_record_batch(&previous, &in_touched)?,
        filter_record_batch(&previous, &others)?,
    ))
}
