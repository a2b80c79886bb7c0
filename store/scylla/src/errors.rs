//! How the driver's answers and errors become the store's.
//!
//! A request that failed is [`StoreError::Unavailable`]: the cluster is
//! down, busy or unreachable, and the caller may retry. A row that does not
//! have the shape this build wrote is [`StoreError::Corrupt`]. A
//! transaction that timed out is neither: its write may or may not have
//! happened, so it is [`CasOutcome::Unknown`] and the caller looks again.

use std::fmt::Display;

use scylla::deserialize::row::DeserializeRow;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError, WriteType};
use scylla::response::query_result::{QueryResult, QueryRowsResult};
use scylla::value::{CqlValue, Row};

use chat4all_store::StoreError;

pub(super) fn unavailable(context: &str, error: impl Display) -> StoreError {
    StoreError::Unavailable(format!("scylla: {context}: {error}"))
}

pub(super) fn corrupt(context: &str, error: impl Display) -> StoreError {
    StoreError::Corrupt(format!("scylla: {context}: {error}"))
}

/// The rows of a read, typed. `what` names the read in errors.
pub(super) fn rows<R>(result: QueryResult, what: &str) -> Result<Vec<R>, StoreError>
where
    R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata>,
{
    let rows = into_rows(result, what)?;
    let typed = rows.rows::<R>().map_err(|e| corrupt(what, e))?;
    typed.map(|row| row.map_err(|e| corrupt(what, e))).collect()
}

/// The first row of a read, if any.
pub(super) fn first_row<R>(result: QueryResult, what: &str) -> Result<Option<R>, StoreError>
where
    R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata>,
{
    Ok(rows(result, what)?.into_iter().next())
}

fn into_rows(result: QueryResult, what: &str) -> Result<QueryRowsResult, StoreError> {
    result.into_rows_result().map_err(|e| corrupt(what, e))
}

/// What became of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CasOutcome {
    Applied,
    /// The condition did not hold: someone else wrote first.
    Lost,
    /// The Paxos round timed out: the write may yet apply. Read again.
    Unknown,
}

/// Whether a conditional write applied, from the `[applied]` column that
/// starts every answer to one. Its other columns (the current values, which
/// Scylla and Cassandra do not return alike) are not relied on: a loser
/// reads again at SERIAL consistency.
pub(super) fn applied(result: QueryResult, what: &str) -> Result<bool, StoreError> {
    let rows = into_rows(result, what)?;
    let (index, _) = rows
        .column_specs()
        .get_by_name("[applied]")
        .ok_or_else(|| corrupt(what, "the answer to a conditional write has no [applied] column"))?;
    let first: Option<Row> = rows.maybe_first_row().map_err(|e| corrupt(what, e))?;
    match first.as_ref().and_then(|r| r.columns.get(index)) {
        Some(Some(CqlValue::Boolean(applied))) => Ok(*applied),
        other => Err(corrupt(what, format!("[applied] is {other:?}"))),
    }
}

/// A conditional write's answer as a [`CasOutcome`].
pub(super) fn cas_outcome(
    result: Result<QueryResult, ExecutionError>,
    what: &str,
) -> Result<CasOutcome, StoreError> {
    match result {
        Ok(result) => Ok(if applied(result, what)? {
            CasOutcome::Applied
        } else {
            CasOutcome::Lost
        }),
        Err(e) if is_cas_timeout(&e) => Ok(CasOutcome::Unknown),
        Err(e) => Err(unavailable(what, e)),
    }
}

/// A Paxos round that timed out: its proposal may still be committed by
/// the next round on that partition.
pub(super) fn is_cas_timeout(error: &ExecutionError) -> bool {
    matches!(
        error,
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::WriteTimeout {
                write_type: WriteType::Cas,
                ..
            },
            _,
        ))
    )
}

#[cfg(test)]
mod tests {
    use scylla::statement::Consistency;

    use super::*;

    fn write_timeout(write_type: WriteType) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::WriteTimeout {
                consistency: Consistency::Serial,
                received: 0,
                required: 2,
                write_type,
            },
            "timed out".to_owned(),
        ))
    }

    #[test]
    fn only_a_paxos_timeout_leaves_the_outcome_unknown() {
        assert!(is_cas_timeout(&write_timeout(WriteType::Cas)));
        assert!(!is_cas_timeout(&write_timeout(WriteType::Simple)));
        assert!(!is_cas_timeout(&ExecutionError::EmptyPlan));
        assert_eq!(
            cas_outcome(Err(write_timeout(WriteType::Cas)), "t").unwrap_or(CasOutcome::Lost),
            CasOutcome::Unknown
        );
        assert!(matches!(
            cas_outcome(Err(write_timeout(WriteType::Simple)), "t"),
            Err(StoreError::Unavailable(_))
        ));
    }
}
