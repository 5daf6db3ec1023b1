//! Postgres values to and from the 4.x interface types, as Spin converts them
//! (`factor-outbound-pg/src/types.rs`): each column type Spin knows maps to its own variant,
//! any other comes back as `unsupported` with the server's binary encoding.

use std::error::Error as StdError;

use bytes::BytesMut;
use chrono::{Datelike as _, NaiveDate, NaiveDateTime, NaiveTime, Timelike as _};
use postgres_protocol::types as protocol;
use rust_decimal::Decimal;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};

use super::v4::{DbDataType, DbValue, Error, Interval, ParameterValue, RangeBoundKind};

type BoxError = Box<dyn StdError + Sync + Send>;

/// The interface type of a column of Postgres type `pg_type`.
pub fn data_type(pg_type: &Type) -> DbDataType {
    match *pg_type {
        Type::BOOL => DbDataType::Boolean,
        Type::BYTEA => DbDataType::Binary,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => DbDataType::Str,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DbDataType::Datetime,
        Type::DATE => DbDataType::Date,
        Type::TIME => DbDataType::Time,
        Type::UUID => DbDataType::Uuid,
        Type::JSONB => DbDataType::Jsonb,
        Type::NUMERIC => DbDataType::Decimal,
        Type::INT4_RANGE => DbDataType::RangeInt32,
        Type::INT8_RANGE => DbDataType::RangeInt64,
        Type::NUM_RANGE => DbDataType::RangeDecimal,
        Type::INT4_ARRAY => DbDataType::ArrayInt32,
        Type::INT8_ARRAY => DbDataType::ArrayInt64,
        Type::NUMERIC_ARRAY => DbDataType::ArrayDecimal,
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => DbDataType::ArrayStr,
        Type::INTERVAL => DbDataType::Interval,
        _ => DbDataType::Other(pg_type.name().to_owned()),
    }
}

/// Every value of `row`, converted by its column's type.
pub fn convert_row(row: &Row) -> Result<Vec<DbValue>, Error> {
    (0..row.len())
        .map(|index| {
            convert_value(row, index).map_err(|error| {
                Error::ValueConversionFailed(format!(
                    "column {}: {error}",
                    row.columns()[index].name()
                ))
            })
        })
        .collect()
}

fn get<'a, T: FromSql<'a>>(
    row: &'a Row,
    index: usize,
    variant: impl FnOnce(T) -> DbValue,
) -> Result<DbValue, BoxError> {
    Ok(row
        .try_get::<_, Option<T>>(index)?
        .map_or(DbValue::DbNull, variant))
}

fn convert_value(row: &Row, index: usize) -> Result<DbValue, BoxError> {
    let pg_type = row.columns()[index].type_().clone();
    match pg_type {
        Type::BOOL => get(row, index, DbValue::Boolean),
        Type::BYTEA => get(row, index, DbValue::Binary),
        Type::FLOAT4 => get(row, index, DbValue::Floating32),
        Type::FLOAT8 => get(row, index, DbValue::Floating64),
        Type::INT2 => get(row, index, DbValue::Int16),
        Type::INT4 => get(row, index, DbValue::Int32),
        Type::INT8 => get(row, index, DbValue::Int64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR => get(row, index, DbValue::Str),
        Type::TIMESTAMP => get(row, index, |value: NaiveDateTime| {
            DbValue::Datetime(datetime_tuple(value))
        }),
        Type::TIMESTAMPTZ => get(row, index, |value: chrono::DateTime<chrono::Utc>| {
            DbValue::Datetime(datetime_tuple(value.naive_utc()))
        }),
        Type::DATE => get(row, index, |value: NaiveDate| {
            DbValue::Date(date_tuple(value))
        }),
        Type::TIME => get(row, index, |value: NaiveTime| {
            DbValue::Time(time_tuple(value))
        }),
        Type::UUID => get(row, index, |value: uuid::Uuid| {
            DbValue::Uuid(value.to_string())
        }),
        Type::JSONB => {
            let value: Option<serde_json::Value> = row.try_get(index)?;
            Ok(match value {
                Some(value) => DbValue::Jsonb(serde_json::to_vec(&value)?),
                None => DbValue::DbNull,
            })
        }
        Type::NUMERIC => get(row, index, |value: Decimal| {
            DbValue::Decimal(value.to_string())
        }),
        Type::INT4_RANGE => get(row, index, |range: PgRange<i32>| {
            DbValue::RangeInt32(range.bounds)
        }),
        Type::INT8_RANGE => get(row, index, |range: PgRange<i64>| {
            DbValue::RangeInt64(range.bounds)
        }),
        Type::NUM_RANGE => get(row, index, |range: PgRange<Decimal>| {
            let text = |bound: Option<(Decimal, RangeBoundKind)>| {
                bound.map(|(value, kind)| (value.to_string(), kind))
            };
            DbValue::RangeDecimal((text(range.bounds.0), text(range.bounds.1)))
        }),
        Type::INT4_ARRAY => get(row, index, DbValue::ArrayInt32),
        Type::INT8_ARRAY => get(row, index, DbValue::ArrayInt64),
        Type::NUMERIC_ARRAY => get(row, index, |values: Vec<Option<Decimal>>| {
            DbValue::ArrayDecimal(
                values
                    .into_iter()
                    .map(|value| value.map(|value| value.to_string()))
                    .collect(),
            )
        }),
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => {
            get(row, index, DbValue::ArrayStr)
        }
        Type::INTERVAL => get(row, index, |interval: PgInterval| {
            DbValue::Interval(interval.0)
        }),
        _ => get(row, index, |raw: Raw| DbValue::Unsupported(raw.0)),
    }
}

/// The parameters for a statement, or why one cannot be sent.
pub fn to_sql_parameters(
    params: &[ParameterValue],
) -> Result<Vec<Box<dyn ToSql + Send + Sync>>, String> {
    params.iter().map(to_sql_parameter).collect()
}

fn to_sql_parameter(value: &ParameterValue) -> Result<Box<dyn ToSql + Send + Sync>, String> {
    Ok(match value {
        ParameterValue::Boolean(value) => Box::new(*value),
        ParameterValue::Int8(value) => Box::new(*value),
        ParameterValue::Int16(value) => Box::new(*value),
        ParameterValue::Int32(value) => Box::new(*value),
        ParameterValue::Int64(value) => Box::new(*value),
        ParameterValue::Floating32(value) => Box::new(*value),
        ParameterValue::Floating64(value) => Box::new(*value),
        ParameterValue::Str(value) => Box::new(value.clone()),
        ParameterValue::Binary(value) => Box::new(value.clone()),
        ParameterValue::Date(value) => Box::new(date(*value)?),
        ParameterValue::Time(value) => Box::new(time(*value)?),
        ParameterValue::Datetime(value) => Box::new(datetime(*value)?),
        ParameterValue::Timestamp(seconds) => Box::new(
            chrono::DateTime::<chrono::Utc>::from_timestamp(*seconds, 0)
                .ok_or_else(|| format!("invalid epoch timestamp {seconds}"))?,
        ),
        ParameterValue::Uuid(value) => {
            Box::new(uuid::Uuid::parse_str(value).map_err(|_| format!("invalid UUID {value}"))?)
        }
        ParameterValue::Jsonb(value) => Box::new(
            serde_json::from_slice::<serde_json::Value>(value)
                .map_err(|_| format!("invalid JSON {}", String::from_utf8_lossy(value)))?,
        ),
        ParameterValue::Decimal(value) => Box::new(decimal(value)?),
        ParameterValue::RangeInt32(bounds) => Box::new(PgRange { bounds: *bounds }),
        ParameterValue::RangeInt64(bounds) => Box::new(PgRange { bounds: *bounds }),
        ParameterValue::RangeDecimal((lower, upper)) => {
            let bound = |bound: &Option<(String, RangeBoundKind)>| {
                bound
                    .as_ref()
                    .map(|(value, kind)| Ok::<_, String>((decimal(value)?, *kind)))
                    .transpose()
            };
            Box::new(PgRange {
                bounds: (bound(lower)?, bound(upper)?),
            })
        }
        ParameterValue::ArrayInt32(values) => Box::new(values.clone()),
        ParameterValue::ArrayInt64(values) => Box::new(values.clone()),
        ParameterValue::ArrayDecimal(values) => Box::new(
            values
                .iter()
                .map(|value| value.as_deref().map(decimal).transpose())
                .collect::<Result<Vec<_>, _>>()?,
        ),
        ParameterValue::ArrayStr(values) => Box::new(values.clone()),
        ParameterValue::Interval(interval) => Box::new(PgInterval(*interval)),
        ParameterValue::DbNull => Box::new(Null),
    })
}

/// What holding `value` costs, counted as Spin counts a result set against its cap.
pub fn memory_size(value: &DbValue) -> usize {
    let heap = match value {
        DbValue::Str(text) | DbValue::Uuid(text) | DbValue::Decimal(text) => text.len(),
        DbValue::Binary(bytes) | DbValue::Jsonb(bytes) | DbValue::Unsupported(bytes) => bytes.len(),
        DbValue::RangeDecimal((lower, upper)) => [lower, upper]
            .into_iter()
            .flatten()
            .map(|(text, _)| text.len())
            .sum(),
        DbValue::ArrayInt32(values) => values.len() * size_of::<Option<i32>>(),
        DbValue::ArrayInt64(values) => values.len() * size_of::<Option<i64>>(),
        DbValue::ArrayDecimal(values) | DbValue::ArrayStr(values) => values
            .iter()
            .map(|value| size_of::<Option<String>>() + value.as_ref().map_or(0, String::len))
            .sum(),
        _ => 0,
    };
    size_of::<DbValue>() + heap
}

fn decimal(value: &str) -> Result<Decimal, String> {
    Decimal::from_str_exact(value).map_err(|_| format!("invalid decimal {value}"))
}

fn date((year, month, day): (i32, u8, u8)) -> Result<NaiveDate, String> {
    NaiveDate::from_ymd_opt(year, month.into(), day.into())
        .ok_or_else(|| format!("invalid date y={year}, m={month}, d={day}"))
}

fn time((hour, minute, second, nanosecond): (u8, u8, u8, u32)) -> Result<NaiveTime, String> {
    NaiveTime::from_hms_nano_opt(hour.into(), minute.into(), second.into(), nanosecond)
        .ok_or_else(|| format!("invalid time {hour}:{minute}:{second}:{nanosecond}"))
}

fn datetime(
    (year, month, day, hour, minute, second, nanosecond): (i32, u8, u8, u8, u8, u8, u32),
) -> Result<NaiveDateTime, String> {
    Ok(NaiveDateTime::new(
        date((year, month, day))?,
        time((hour, minute, second, nanosecond))?,
    ))
}

// chrono keeps months, days, hours, minutes and seconds well inside u8, so the narrowing
// casts below cannot truncate.
#[expect(clippy::cast_possible_truncation, reason = "chrono's ranges fit in u8")]
fn date_tuple(value: NaiveDate) -> (i32, u8, u8) {
    (value.year(), value.month() as u8, value.day() as u8)
}

#[expect(clippy::cast_possible_truncation, reason = "chrono's ranges fit in u8")]
fn time_tuple(value: NaiveTime) -> (u8, u8, u8, u32) {
    (
        value.hour() as u8,
        value.minute() as u8,
        value.second() as u8,
        value.nanosecond(),
    )
}

fn datetime_tuple(value: NaiveDateTime) -> (i32, u8, u8, u8, u8, u8, u32) {
    let (year, month, day) = date_tuple(value.date());
    let (hour, minute, second, nanosecond) = time_tuple(value.time());
    (year, month, day, hour, minute, second, nanosecond)
}

/// SQL NULL for a parameter of any type.
#[derive(Debug)]
struct Null;

impl ToSql for Null {
    fn to_sql(&self, _: &Type, _: &mut BytesMut) -> Result<IsNull, BoxError> {
        Ok(IsNull::Yes)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A value of a type Spin does not convert: its binary encoding, as the server sent it.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Self(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// `interval` in Postgres's binary form: microseconds, days, months.
#[derive(Debug)]
struct PgInterval(Interval);

impl<'a> FromSql<'a> for PgInterval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let (micros, rest) = raw.split_first_chunk::<8>().ok_or("interval too short")?;
        let (days, rest) = rest.split_first_chunk::<4>().ok_or("interval too short")?;
        let months = rest.first_chunk::<4>().ok_or("interval too short")?;
        Ok(Self(Interval {
            micros: i64::from_be_bytes(*micros),
            days: i32::from_be_bytes(*days),
            months: i32::from_be_bytes(*months),
        }))
    }

    fn accepts(pg_type: &Type) -> bool {
        *pg_type == Type::INTERVAL
    }
}

impl ToSql for PgInterval {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        out.extend_from_slice(&self.0.micros.to_be_bytes());
        out.extend_from_slice(&self.0.days.to_be_bytes());
        out.extend_from_slice(&self.0.months.to_be_bytes());
        Ok(IsNull::No)
    }

    fn accepts(pg_type: &Type) -> bool {
        *pg_type == Type::INTERVAL
    }

    to_sql_checked!();
}

type Bound<T> = Option<(T, RangeBoundKind)>;

/// A range of `T` as the interface spells it: each bound absent (unbounded) or a value and
/// whether it is included. An empty range has neither bound, as in Spin.
#[derive(Debug)]
struct PgRange<T> {
    bounds: (Bound<T>, Bound<T>),
}

fn range_element(pg_type: &Type) -> Option<&Type> {
    match pg_type.kind() {
        Kind::Range(element) => Some(element),
        _ => None,
    }
}

impl<'a, T: FromSql<'a>> FromSql<'a> for PgRange<T> {
    fn from_sql(pg_type: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let element = range_element(pg_type).ok_or("not a range type")?;
        let bound = |bound: protocol::RangeBound<Option<&'a [u8]>>| -> Result<Bound<T>, BoxError> {
            let (raw, kind) = match bound {
                protocol::RangeBound::Inclusive(raw) => (raw, RangeBoundKind::Inclusive),
                protocol::RangeBound::Exclusive(raw) => (raw, RangeBoundKind::Exclusive),
                protocol::RangeBound::Unbounded => return Ok(None),
            };
            let raw = raw.ok_or("a range bound is NULL")?;
            Ok(Some((T::from_sql(element, raw)?, kind)))
        };
        Ok(match protocol::range_from_sql(raw)? {
            protocol::Range::Empty => Self {
                bounds: (None, None),
            },
            protocol::Range::Nonempty(lower, upper) => Self {
                bounds: (bound(lower)?, bound(upper)?),
            },
        })
    }

    fn accepts(pg_type: &Type) -> bool {
        range_element(pg_type).is_some_and(T::accepts)
    }
}

impl<T: ToSql> ToSql for PgRange<T> {
    fn to_sql(&self, pg_type: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let element = range_element(pg_type).ok_or("not a range type")?;
        let write = |bound: &Bound<T>, out: &mut BytesMut| {
            Ok(match bound {
                None => protocol::RangeBound::Unbounded,
                Some((value, kind)) => {
                    let is_null = match value.to_sql(element, out)? {
                        IsNull::Yes => postgres_protocol::IsNull::Yes,
                        IsNull::No => postgres_protocol::IsNull::No,
                    };
                    match kind {
                        RangeBoundKind::Inclusive => protocol::RangeBound::Inclusive(is_null),
                        RangeBoundKind::Exclusive => protocol::RangeBound::Exclusive(is_null),
                    }
                }
            })
        };
        protocol::range_to_sql(
            |out| write(&self.bounds.0, out),
            |out| write(&self.bounds.1, out),
            out,
        )?;
        Ok(IsNull::No)
    }

    fn accepts(pg_type: &Type) -> bool {
        range_element(pg_type).is_some_and(T::accepts)
    }

    to_sql_checked!();
}
