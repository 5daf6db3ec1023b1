//! `rdbms-probe`: runs one statement on Postgres or MySQL through one of spin-sdk 5.2's
//! relational interfaces (test fixture).
//!
//! Query parameters: `db` picks the interface — `pg` (`fermyon:spin/postgres@2.0.0`), `pg3`
//! (`spin:postgres/postgres@3.0.0`), `pg4` (`spin:postgres/postgres@4.0.0`) or `mysql`
//! (`fermyon:spin/mysql@2.0.0`); `address` is the database address; `sql` the statement;
//! `op` is `query` (default) or `execute`; each `p=<type>:<value>` is one parameter, in order
//! (see `probe_support::Param`).
//!
//! A query answers `200` with one line of columns (`name:DataType`, tab-separated) and one line
//! per row (each value's `Debug` text, tab-separated); `execute` answers the rows affected
//! (`ok` for MySQL, whose `execute` returns nothing). Any error, including failing to open,
//! is a `500` with the error's `Debug` text.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use std::fmt::Debug;

use probe_support::{Param, Query};
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::{mysql, pg, pg3, pg4};

/// Runs the probe described in the crate docs.
#[http_component]
fn handle_rdbms_probe(request: Request) -> Response {
    let query = Query::parse(request.query());
    match probe(&query) {
        Ok(body) => text_response(200, body),
        Err(reason) => text_response(500, reason),
    }
}

fn probe(query: &Query) -> Result<String, String> {
    let address = query.require("address")?;
    let sql = query.require("sql")?;
    let params = query
        .all("p")
        .iter()
        .map(|param| Param::parse(param))
        .collect::<Result<Vec<_>, _>>()?;
    let execute = query.get("op") == Some("execute");
    // The four interfaces differ only in their types; the steps are the same.
    macro_rules! run {
        ($module:ident, $convert:ident, $affected:expr) => {{
            let connection = $module::Connection::open(address).map_err(debug)?;
            let params = params
                .into_iter()
                .map($convert)
                .collect::<Result<Vec<_>, _>>()?;
            if execute {
                let outcome = connection.execute(sql, &params).map_err(debug)?;
                return Ok($affected(outcome));
            }
            let rows = connection.query(sql, &params).map_err(debug)?;
            Ok(table(
                rows.columns.iter().map(|c| (&c.name, &c.data_type)),
                &rows.rows,
            ))
        }};
    }
    match query.require("db")? {
        "pg" => run!(pg, to_v2, |affected: u64| affected.to_string()),
        "pg3" => run!(pg3, to_pg3, |affected: u64| affected.to_string()),
        "pg4" => run!(pg4, to_pg4, |affected: u64| affected.to_string()),
        "mysql" => run!(mysql, to_v2, |()| "ok".to_owned()),
        other => Err(format!("unknown db {other:?}")),
    }
}

fn table<'a, T: Debug + 'a, V: Debug>(
    columns: impl Iterator<Item = (&'a String, &'a T)>,
    rows: &[Vec<V>],
) -> String {
    let mut lines = vec![
        columns
            .map(|(name, data_type)| format!("{name}:{data_type:?}"))
            .collect::<Vec<_>>()
            .join("\t"),
    ];
    for row in rows {
        lines.push(
            row.iter()
                .map(|value| format!("{value:?}"))
                .collect::<Vec<_>>()
                .join("\t"),
        );
    }
    lines.join("\n")
}

fn to_v2(param: Param) -> Result<pg::ParameterValue, String> {
    use pg::ParameterValue as P;
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
        other => return Err(other.unsupported("rdbms-types@2.0.0")),
    })
}

fn to_pg3(param: Param) -> Result<pg3::ParameterValue, String> {
    use pg3::ParameterValue as P;
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
        other => return Err(other.unsupported("postgres@3.0.0")),
    })
}

fn to_pg4(param: Param) -> Result<pg4::ParameterValue, String> {
    use pg4::ParameterValue as P;
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
        Param::Interval(micros, days, months) => P::Interval(pg4::Interval {
            micros,
            days,
            months,
        }),
        Param::I32Range(lower, upper) => P::RangeInt32((
            lower.map(|v| (v, pg4::RangeBoundKind::Inclusive)),
            upper.map(|v| (v, pg4::RangeBoundKind::Exclusive)),
        )),
        other => return Err(other.unsupported("postgres@4.0.0")),
    })
}

fn debug(value: impl Debug) -> String {
    format!("{value:?}")
}

fn text_response(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
