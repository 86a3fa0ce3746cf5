//! Bounds of temporal values. Ingest keeps timestamps and dates within years 1–9999 (what RFC
//! 3339 can write, and what every ODF reader can hold); encoders that turn values into text use
//! `unrepresentable_to_null` so that a value no calendar can hold never fails a response.

use std::sync::Arc;

use arrow::array::temporal_conversions::{as_date, as_datetime};
use arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z in milliseconds since the epoch.
const MIN_MILLIS: i64 = -62_135_596_800_000;
const MAX_MILLIS: i64 = 253_402_300_799_999;
/// The same two dates in days since the epoch.
const MIN_DAYS: i64 = -719_162;
const MAX_DAYS: i64 = 2_932_896;

/// The first row of a timestamp or date column whose value lies outside years 1–9999; `None`
/// for other types and for columns that fit.
pub fn first_outside_years_1_to_9999(array: &dyn Array) -> Option<usize> {
    let (low, high) = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => (MIN_MILLIS / 1000, MAX_MILLIS / 1000),
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Date64 => {
            (MIN_MILLIS, MAX_MILLIS)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => (MIN_MILLIS * 1000, MAX_MILLIS * 1000),
        // Nanoseconds since 1970 cannot leave the years 1677–2262.
        DataType::Timestamp(TimeUnit::Nanosecond, _) => return None,
        DataType::Date32 => (MIN_DAYS, MAX_DAYS),
        _ => return None,
    };
    let outside = |value: i64| value < low || value > high;
    match array.data_type() {
        DataType::Date32 => first_where(array.as_primitive::<Date32Type>(), |v| {
            outside(i64::from(v))
        }),
        DataType::Date64 => first_where(array.as_primitive::<Date64Type>(), outside),
        DataType::Timestamp(TimeUnit::Second, _) => {
            first_where(array.as_primitive::<TimestampSecondType>(), outside)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            first_where(array.as_primitive::<TimestampMillisecondType>(), outside)
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            first_where(array.as_primitive::<TimestampMicrosecondType>(), outside)
        }
        _ => None,
    }
}

/// Every batch of every push passes here: the vectorized min and max say whether any value
/// is outside before a row is looked at.
fn first_where<T: ArrowPrimitiveType>(
    array: &PrimitiveArray<T>,
    outside: impl Fn(T::Native) -> bool,
) -> Option<usize> {
    let (Some(min), Some(max)) = (arrow::compute::min(array), arrow::compute::max(array)) else {
        return None;
    };
    if !outside(min) && !outside(max) {
        return None;
    }
    (0..array.len()).find(|&row| array.is_valid(row) && outside(array.value(row)))
}

/// The column with every temporal value no calendar date can hold set to null (and, when
/// `finite_floats`, every NaN and infinity too, which JSON cannot spell); `None` when nothing
/// needs to change.
pub fn unrepresentable_to_null(array: &ArrayRef, finite_floats: bool) -> Option<ArrayRef> {
    fn nulled<T: ArrowPrimitiveType>(
        array: &ArrayRef,
        bad: impl Fn(T::Native) -> bool,
    ) -> Option<ArrayRef> {
        let values = array.as_primitive::<T>();
        let any = (0..values.len()).any(|row| values.is_valid(row) && bad(values.value(row)));
        if !any {
            return None;
        }
        let kept: PrimitiveArray<T> = values.unary_opt(|value| (!bad(value)).then_some(value));
        Some(Arc::new(kept.with_data_type(array.data_type().clone())))
    }
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => nulled::<TimestampSecondType>(array, |v| {
            as_datetime::<TimestampSecondType>(v).is_none()
        }),
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            nulled::<TimestampMillisecondType>(array, |v| {
                as_datetime::<TimestampMillisecondType>(v).is_none()
            })
        }
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            nulled::<TimestampMicrosecondType>(array, |v| {
                as_datetime::<TimestampMicrosecondType>(v).is_none()
            })
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            nulled::<TimestampNanosecondType>(array, |v| {
                as_datetime::<TimestampNanosecondType>(v).is_none()
            })
        }
        DataType::Date32 => {
            nulled::<Date32Type>(array, |v| as_date::<Date32Type>(i64::from(v)).is_none())
        }
        DataType::Date64 => nulled::<Date64Type>(array, |v| as_date::<Date64Type>(v).is_none()),
        DataType::Float64 if finite_floats => {
            nulled::<arrow::datatypes::Float64Type>(array, |v| !v.is_finite())
        }
        DataType::Float32 if finite_floats => {
            nulled::<arrow::datatypes::Float32Type>(array, |v| !v.is_finite())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Date32Array, TimestampMillisecondArray, TimestampSecondArray};

    use super::*;

    #[test]
    fn bounds_are_years_1_to_9999() {
        let millis = TimestampMillisecondArray::from(vec![
            Some(MIN_MILLIS),
            None,
            Some(MAX_MILLIS),
            Some(MAX_MILLIS + 1),
        ]);
        assert_eq!(first_outside_years_1_to_9999(&millis), Some(3));
        let seconds = TimestampSecondArray::from(vec![0, MIN_MILLIS / 1000 - 1]);
        assert_eq!(first_outside_years_1_to_9999(&seconds), Some(1));
        let days = Date32Array::from(vec![MIN_DAYS as i32, MAX_DAYS as i32]);
        assert_eq!(first_outside_years_1_to_9999(&days), None);
        let first = chrono::DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z").unwrap();
        let last = chrono::DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999Z").unwrap();
        assert_eq!(first.timestamp_millis(), MIN_MILLIS);
        assert_eq!(last.timestamp_millis(), MAX_MILLIS);
        assert_eq!(
            chrono::NaiveDate::from_ymd_opt(9999, 12, 31)
                .unwrap()
                .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
                .num_days(),
            MAX_DAYS
        );
    }

    #[test]
    fn only_unrepresentable_values_become_null() {
        let column: ArrayRef =
            Arc::new(TimestampMillisecondArray::from(vec![i64::MAX, 0]).with_timezone("UTC"));
        let fixed = unrepresentable_to_null(&column, true).unwrap();
        assert_eq!(fixed.null_count(), 1);
        assert!(fixed.is_valid(1));
        assert_eq!(fixed.data_type(), column.data_type());
        let fine: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![0, 1]));
        assert!(unrepresentable_to_null(&fine, true).is_none());
    }
}
