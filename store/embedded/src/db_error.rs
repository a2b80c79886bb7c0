//! How SQLite's errors become the store's, so a caller can tell "retry"
//! (a busy or failing disk) from "this file is not what we wrote".

use rusqlite::ErrorCode;

use chat4all_store::StoreError;

/// The store's error for SQLite's. A function rather than a `From`: the
/// store's error belongs to another crate, so `?` takes it through
/// `.map_err(db_error)`.
pub(crate) fn db_error(error: rusqlite::Error) -> StoreError {
    let corrupt = match error.sqlite_error_code() {
        Some(code) => matches!(code, ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase),
        // A column that does not hold the type this build wrote there.
        None => matches!(
            error,
            rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
        ),
    };
    if corrupt {
        StoreError::Corrupt(error.to_string())
    } else {
        StoreError::Unavailable(format!("embedded database: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corruption_is_told_apart_from_trouble_worth_a_retry() {
        let busy =
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        assert!(matches!(db_error(busy), StoreError::Unavailable(_)));
        let corrupt =
            rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT), None);
        assert!(matches!(db_error(corrupt), StoreError::Corrupt(_)));
        let wrong_type = rusqlite::Error::InvalidColumnType(0, "seq".into(), rusqlite::types::Type::Text);
        assert!(matches!(db_error(wrong_type), StoreError::Corrupt(_)));
    }
}
