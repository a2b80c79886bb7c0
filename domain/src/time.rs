use std::time::{SystemTime, UNIX_EPOCH};

/// A point in time, in microseconds since the Unix epoch: fine enough to
/// order the hops of one message on one machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn now() -> Self {
        let micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        Self(micros)
    }

    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub fn from_millis(millis: i64) -> Self {
        Self(millis.saturating_mul(1000))
    }

    pub fn from_secs(secs: i64) -> Self {
        Self(secs.saturating_mul(1_000_000))
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    /// Microseconds from `earlier` to `self` (negative if `self` is earlier).
    pub fn micros_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl From<Timestamp> for prost_types::Timestamp {
    fn from(t: Timestamp) -> Self {
        prost_types::Timestamp {
            seconds: t.0.div_euclid(1_000_000),
            nanos: i32::try_from(t.0.rem_euclid(1_000_000) * 1000).unwrap_or(0),
        }
    }
}

impl From<prost_types::Timestamp> for Timestamp {
    fn from(t: prost_types::Timestamp) -> Self {
        Self(
            t.seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(t.nanos) / 1000),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_proto() {
        for micros in [0, 1, 1_700_000_000_123_456, -1] {
            let t = Timestamp::from_micros(micros);
            assert_eq!(Timestamp::from(prost_types::Timestamp::from(t)), t);
        }
    }
}
