//! The query steps of an SQL transform: `query`, or `queries[]` whose aliased steps name
//! intermediate results and whose one step without an alias is the output.

use super::source::TransformSql;

/// Why the steps of a transform cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlStepsError {
    #[error("an SQL transform needs exactly one of `query` or `queries`")]
    NoQuery,
    #[error("one query needs to have no alias: its result is the output")]
    NoOutput,
    #[error("only one query may have no alias (the output)")]
    SeveralOutputs,
}

/// One step: the name its result gets (none for the output) and its SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlStep<'a> {
    pub alias: Option<&'a str>,
    pub query: &'a str,
}

impl TransformSql {
    /// The steps in the order they run: every aliased step in its order, the output last.
    pub fn steps(&self) -> Result<Vec<SqlStep<'_>>, SqlStepsError> {
        let mut steps: Vec<SqlStep<'_>> = match (&self.query, &self.queries) {
            (Some(query), None) => vec![SqlStep { alias: None, query }],
            (None, Some(queries)) if !queries.is_empty() => queries
                .iter()
                .map(|step| SqlStep {
                    alias: step.alias.as_deref(),
                    query: &step.query,
                })
                .collect(),
            _ => return Err(SqlStepsError::NoQuery),
        };
        let outputs: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, step)| step.alias.is_none())
            .map(|(index, _)| index)
            .collect();
        match outputs.as_slice() {
            [output] => {
                let output = steps.remove(*output);
                steps.push(output);
                Ok(steps)
            }
            [] => Err(SqlStepsError::NoOutput),
            _ => Err(SqlStepsError::SeveralOutputs),
        }
    }
}
