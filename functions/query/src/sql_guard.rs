//! Bounds on query text before it is planned: its length and the nesting depth of its syntax
//! tree. DataFusion plans, optimizes and evaluates recursively, so a left-deep chain of a few
//! hundred operators (`1+1+…`, `a OR b OR …`, `UNION ALL …`, nested `CASE`, many joins) would
//! otherwise exhaust a thread's stack and abort the whole process.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, LimitClause, Query, Select, SetExpr, Statement, Value, Visit, VisitMut, Visitor,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::error::QueryError;

/// The bounds on one query's text.
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    /// Bytes of query text.
    pub max_length: usize,
    /// Levels of the syntax tree: every expression, sub-query, set operation and joined table
    /// counts one.
    pub max_depth: usize,
    /// Levels of brackets and `CASE … END` in the text, checked on tokens before parsing (the
    /// parser's own recursion bound would otherwise answer with confusing syntax errors).
    pub max_nesting: usize,
}

/// Refuses text whose brackets or `CASE` expressions nest deeper than `max_nesting`. Text the
/// tokenizer refuses is left for the parser to report.
pub fn check_nesting(sql: &str, limits: SqlLimits) -> Result<(), QueryError> {
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        return Ok(());
    };
    let mut depth = 0usize;
    for token in &tokens {
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::Word(word) if word.keyword == Keyword::CASE => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::Word(word) if word.keyword == Keyword::END => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > limits.max_nesting {
            return Err(QueryError::LimitExceeded(format!(
                "query nests brackets or CASE expressions deeper than {} levels \
                 (max_query_nesting)",
                limits.max_nesting
            )));
        }
    }
    Ok(())
}

/// Refuses query text longer than `max_length` bytes before it is parsed.
pub fn check_length(sql: &str, limits: SqlLimits) -> Result<(), QueryError> {
    if sql.len() > limits.max_length {
        return Err(QueryError::LimitExceeded(format!(
            "query text is {} bytes; the limit is {} bytes (max_query_length)",
            sql.len(),
            limits.max_length
        )));
    }
    Ok(())
}

/// Refuses a parsed statement nested deeper than `max_depth`. The walk stops as soon as the
/// bound is crossed, so its own recursion is bounded too.
pub fn check_depth(statement: &Statement, limits: SqlLimits) -> Result<(), QueryError> {
    let mut visitor = DepthVisitor {
        depth: 0,
        max: limits.max_depth,
        entered: Vec::new(),
    };
    match statement.visit(&mut visitor) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(QueryError::LimitExceeded(format!(
            "query nests deeper than {} levels (max_query_depth); expressions, sub-queries, \
             UNION/INTERSECT/EXCEPT chains and joins each count a level",
            limits.max_depth
        ))),
    }
}

struct DepthVisitor {
    depth: usize,
    max: usize,
    /// Levels each open query or select added, to take off again when it is left.
    entered: Vec<usize>,
}

impl DepthVisitor {
    fn enter(&mut self, levels: usize) -> ControlFlow<()> {
        self.depth += levels;
        self.entered.push(levels);
        if self.depth > self.max {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn leave(&mut self) -> ControlFlow<()> {
        self.depth -= self.entered.pop().unwrap_or(0);
        ControlFlow::Continue(())
    }
}

impl Visitor for DepthVisitor {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        // The walk descends set operations without a hook: measure their chain here, without
        // recursion, before the walk goes down it.
        self.enter(1 + set_operation_depth(&query.body))
    }

    fn post_visit_query(&mut self, _query: &Query) -> ControlFlow<()> {
        self.leave()
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<()> {
        let tables: usize = select.from.iter().map(|table| 1 + table.joins.len()).sum();
        self.enter(tables.max(1))
    }

    fn post_visit_select(&mut self, _select: &Select) -> ControlFlow<()> {
        self.leave()
    }

    fn pre_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.enter(1)
    }

    fn post_visit_expr(&mut self, _expr: &Expr) -> ControlFlow<()> {
        self.leave()
    }
}

/// Depth of the tree of set operations under a query body, walked with an explicit stack.
fn set_operation_depth(body: &SetExpr) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(body, 0usize)];
    while let Some((expr, depth)) = pending.pop() {
        deepest = deepest.max(depth);
        if let SetExpr::SetOperation { left, right, .. } = expr {
            pending.push((left, depth + 1));
            pending.push((right, depth + 1));
        }
    }
    deepest
}

/// `LIMIT`/`OFFSET` literals beyond what the engine counts in (i64) mean "all": they become the
/// largest count instead of failing with a cast error.
pub fn clamp_limits(statement: &mut Statement) {
    struct Clamp;
    impl VisitorMut for Clamp {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let (limit, offset) = match &mut query.limit_clause {
                Some(LimitClause::LimitOffset { limit, offset, .. }) => (
                    limit.as_mut(),
                    offset.as_mut().map(|offset| &mut offset.value),
                ),
                Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
                    (Some(limit), Some(offset))
                }
                None => (None, None),
            };
            for expr in [limit, offset].into_iter().flatten() {
                if let Expr::Value(value) = expr
                    && let Value::Number(text, _) = &mut value.value
                    && text.parse::<i64>().is_err()
                    && text.bytes().all(|byte| byte.is_ascii_digit())
                {
                    *text = i64::MAX.to_string();
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Clamp);
}

/// Whether a query reads the SQL catalog views (`information_schema`, `SHOW TABLES`,
/// `SHOW COLUMNS`), which need the list of readable datasets.
pub fn mentions_catalog(sql: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    lower.contains("information_schema") || lower.trim_start().starts_with("show")
}
