//! `rdbms-probe-p3`: runs one statement on Postgres or MySQL through spin-sdk 7.0's
//! interfaces (test fixture, WASIp3).
//!
//! Same query and answers as the WASIp2 `rdbms-probe`, with `db` either `pg`
//! (`spin:postgres/postgres@4.2.0`, its `async` functions) or `mysql`
//! (`spin:mysql/mysql@3.0.0`). Rows are read from the row stream as the host sends them; an
//! error that ends the stream early is a `500` after the rows read so far.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_service]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_7 as spin_sdk;

use std::fmt::Debug;

use probe_support::{Param, Query};
use spin_sdk::http::{HeaderMap, HeaderName, HeaderValue, IntoResponse, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::{mysql, pg};

/// Runs the probe described in the crate docs.
#[http_service]
async fn handle_rdbms_probe(request: Request) -> impl IntoResponse {
    let query = Query::parse(request.uri().query().unwrap_or_default());
    match probe(&query).await {
        Ok(body) => text_response(StatusCode::OK, body),
        Err(reason) => text_response(StatusCode::INTERNAL_SERVER_ERROR, reason),
    }
}

async fn probe(query: &Query) -> Result<String, String> {
    let address = query.require("address")?;
    let sql = query.require("sql")?;
    let params = query
        .all("p")
        .iter()
        .map(|param| Param::parse(param))
        .collect::<Result<Vec<_>, _>>()?;
    let execute = query.get("op") == Some("execute");
    // The two interfaces differ only in their types; the steps are the same.
    macro_rules! run {
        ($module:ident, $convert:ident, $affected:expr) => {{
            let connection = $module::Connection::open(address).await.map_err(debug)?;
            let params = params
                .into_iter()
                .map($convert)
                .collect::<Result<Vec<_>, _>>()?;
            if execute {
                let outcome = connection.execute(sql, params).await.map_err(debug)?;
                return Ok($affected(outcome));
            }
            let mut result = connection.query(sql, params).await.map_err(debug)?;
            let mut lines = vec![columns(
                result.columns().iter().map(|c| (&c.name, &c.data_type)),
            )];
            while let Some(row) = result.rows().next().await {
                lines.push(values(&row));
            }
            result.result().await.map_err(debug)?;
            Ok(lines.join("\n"))
        }};
    }
    match query.require("db")? {
        "pg" => run!(pg, to_pg, |affected: u64| affected.to_string()),
        "mysql" => run!(mysql, to_mysql, |()| "ok".to_owned()),
        other => Err(format!("unknown db {other:?}")),
    }
}

fn columns<'a, T: Debug + 'a>(columns: impl Iterator<Item = (&'a String, &'a T)>) -> String {
    columns
        .map(|(name, data_type)| format!("{name}:{data_type:?}"))
        .collect::<Vec<_>>()
        .join("\t")
}

fn values<V: Debug>(row: &[V]) -> String {
    row.iter()
        .map(|value| format!("{value:?}"))
        .collect::<Vec<_>>()
        .join("\t")
}

fn to_pg(param: Param) -> Result<pg::ParameterValue, String> {
    use pg::ParameterValue as P;
    Ok(match param {
        Param::Bool(v) => P::Boolean(v),
        Param::I8(v) => P::Int8(v),
        Param::I16(v) => P::Int16(v),
        Param::I32(v) => P::Int32(v),
        Param::I64(v) => P::Int64(v),
        Param::F32(v) => P::Floating32(v),
        Param::F64(v) => P::Floating64(v),
        Param::Str(v) => P::Str(v),
        Param::Binary(v) => P::Binary(v),
        Param::Null => P::DbNull,
        Param::Date(v) => P::Date(v),
        Param::Time(v) => P::Time(v),
        Param::Datetime(v) => P::Datetime(v),
        Param::Timestamp(v) => P::Timestamp(v),
        Param::Uuid(v) => P::Uuid(v),
        Param::Jsonb(v) => P::Jsonb(v),
        Param::Decimal(v) => P::Decimal(v),
        Param::I32s(v) => P::ArrayInt32(v),
        Param::Strs(v) => P::ArrayStr(v),
        Param::Interval(micros, days, months) => P::Interval(pg::Interval {
            micros,
            days,
            months,
        }),
        Param::I32Range(lower, upper) => P::RangeInt32((
            lower.map(|v| (v, pg::RangeBoundKind::Inclusive)),
            upper.map(|v| (v, pg::RangeBoundKind::Exclusive)),
        )),
        other => return Err(other.unsupported("postgres@4.2.0")),
    })
}

fn to_mysql(param: Param) -> Result<mysql::ParameterValue, String> {
    use mysql::ParameterValue as P;
    Ok(match param {
        Param::Bool(v) => P::Boolean(v),
        Param::I8(v) => P::Int8(v),
        Param::I16(v) => P::Int16(v),
        Param::I32(v) => P::Int32(v),
        Param::I64(v) => P::Int64(v),
        Param::U8(v) => P::Uint8(v),
        Param::U16(v) => P::Uint16(v),
        Param::U32(v) => P::Uint32(v),
        Param::U64(v) => P::Uint64(v),
        Param::F32(v) => P::Floating32(v),
        Param::F64(v) => P::Floating64(v),
        Param::Str(v) => P::Str(v),
        Param::Binary(v) => P::Binary(v),
        Param::Null => P::DbNull,
        other => return Err(other.unsupported("mysql@3.0.0")),
    })
}

fn debug(value: impl Debug) -> String {
    format!("{value:?}")
}

fn text_response(status: StatusCode, body: String) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("text/plain"),
    );
    (status, headers, body)
}
