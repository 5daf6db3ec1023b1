//! Spin outbound Postgres and MySQL from guests, every interface version, against the real
//! PostgreSQL (127.0.0.1:5432, database `test`) and MariaDB (127.0.0.1:3306, database `test`)
//! on this machine: `/rdbms-probe` speaks spin-sdk 5.2's `pg` (`fermyon:spin/postgres@2.0.0`),
//! `pg3`, `pg4` and `mysql` (`fermyon:spin/mysql@2.0.0`); `/p3/rdbms-probe` speaks spin-sdk
//! 7.0's `pg` (`spin:postgres/postgres@4.2.0`) and `mysql` (`spin:mysql/mysql@3.0.0`). Every
//! test works in tables of its own and drops them.

use std::time::Duration;

use http::StatusCode;
use nexus_tests::{TestPlatform, TestResponse};

use crate::counting_listener::CountingListener;

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
const MYSQL: &str = "mysql://root@127.0.0.1:3306/test";

/// Every (probe, db) pair that reaches Postgres.
const POSTGRES_INTERFACES: [(&str, &str); 4] = [
    ("/rdbms-probe", "pg"),
    ("/rdbms-probe", "pg3"),
    ("/rdbms-probe", "pg4"),
    ("/p3/rdbms-probe", "pg"),
];

/// Every (probe, db) pair that reaches MySQL.
const MYSQL_INTERFACES: [(&str, &str); 2] =
    [("/rdbms-probe", "mysql"), ("/p3/rdbms-probe", "mysql")];

/// A table name no other test (or run) uses.
fn unique_table() -> String {
    format!("nexus_{}", uuid::Uuid::new_v4().simple())
}

async fn call(
    platform: &TestPlatform,
    (probe, db): (&str, &str),
    address: &str,
    op: &str,
    sql: &str,
    params: &[&str],
) -> TestResponse {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("db", db)
        .append_pair("address", address)
        .append_pair("op", op)
        .append_pair("sql", sql);
    for param in params {
        query.append_pair("p", param);
    }
    platform.get(&format!("{probe}?{}", query.finish())).await
}

/// Runs `sql` and returns the `200` body.
async fn ok(
    platform: &TestPlatform,
    interface: (&str, &str),
    address: &str,
    op: &str,
    sql: &str,
    params: &[&str],
) -> String {
    let response = call(platform, interface, address, op, sql, params).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{interface:?} {sql}: {}",
        response.text()
    );
    normalise(&response.text())
}

/// The probe's text without the type paths the guest's bindings print (`DbValue::Int32(1)`,
/// `Error::QueryFailed(…)`): the variants are what matter.
fn normalise(text: &str) -> String {
    ["DbValue::", "DbDataType::", "QueryError::", "Error::"]
        .into_iter()
        .fold(text.to_owned(), |text, path| text.replace(path, ""))
}

/// Runs `sql`, which must fail, and returns the error text.
async fn failure(
    platform: &TestPlatform,
    interface: (&str, &str),
    address: &str,
    sql: &str,
    params: &[&str],
) -> String {
    let response = call(platform, interface, address, "query", sql, params).await;
    assert_eq!(
        response.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{interface:?} {sql}: {}",
        response.text()
    );
    normalise(&response.text())
}

#[tokio::test]
async fn postgres_round_trips_on_every_interface() {
    let platform = TestPlatform::builder().start().await;
    for interface in POSTGRES_INTERFACES {
        let table = unique_table();
        let create = format!(
            "CREATE TABLE {table} (id INT4 PRIMARY KEY, name TEXT, data BYTEA, score FLOAT8, flag BOOL)"
        );
        ok(&platform, interface, POSTGRES, "execute", &create, &[]).await;
        let insert =
            format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, $5), ($6, $7, NULL, NULL, NULL)");
        let inserted = ok(
            &platform,
            interface,
            POSTGRES,
            "execute",
            &insert,
            &[
                "i32:1",
                "str:one",
                "hex:00ff",
                "f64:1.5",
                "bool:true",
                "i32:2",
                "null",
            ],
        )
        .await;
        assert_eq!(inserted, "2", "{interface:?}");
        let select =
            format!("SELECT id, name, data, score, flag FROM {table} WHERE id >= $1 ORDER BY id");
        let rows = ok(&platform, interface, POSTGRES, "query", &select, &["i32:1"]).await;
        assert_eq!(
            rows,
            "id:Int32\tname:Str\tdata:Binary\tscore:Floating64\tflag:Boolean\n\
             Int32(1)\tStr(\"one\")\tBinary([0, 255])\tFloating64(1.5)\tBoolean(true)\n\
             Int32(2)\tDbNull\tDbNull\tDbNull\tDbNull",
            "{interface:?}"
        );
        let empty = ok(&platform, interface, POSTGRES, "query", &select, &["i32:3"]).await;
        assert_eq!(
            empty, "id:Int32\tname:Str\tdata:Binary\tscore:Floating64\tflag:Boolean",
            "{interface:?}: an empty result still names its columns"
        );
        ok(
            &platform,
            interface,
            POSTGRES,
            "execute",
            &format!("DROP TABLE {table}"),
            &[],
        )
        .await;
    }
}

#[tokio::test]
async fn postgres_4_converts_every_type_spin_converts() {
    let platform = TestPlatform::builder().start().await;
    let sql = "SELECT $1::uuid AS id, $2::jsonb AS doc, $3::numeric AS amount, $4::int4[] AS ints, \
               $5::text[] AS texts, $6::interval AS span, $7::int4range AS range, \
               $8::date AS day, $9::time AS at, $10::timestamp AS moment, \
               '2024-02-29 13:14:15+00'::timestamptz AS instant, 'x'::\"char\" AS other";
    let params = [
        "uuid:6b1f8d9c-3c4e-4a57-9e2b-0d2f5c6a7b8c",
        "jsonb:{\"a\": [1, 2]}",
        "decimal:12.340",
        "i32s:1,,3",
        "strs:a,,c",
        "interval:1500000,2,3",
        "i32range:1,10",
        "date:2024-02-29",
        "time:13:14:15.5",
        "datetime:2024-02-29T13:14:15",
    ];
    for interface in [("/rdbms-probe", "pg4"), ("/p3/rdbms-probe", "pg")] {
        let rows = ok(&platform, interface, POSTGRES, "query", sql, &params).await;
        let (columns, values) = rows.split_once('\n').unwrap();
        assert_eq!(
            columns,
            "id:Uuid\tdoc:Jsonb\tamount:Decimal\tints:ArrayInt32\ttexts:ArrayStr\tspan:Interval\t\
             range:RangeInt32\tday:Date\tat:Time\tmoment:Datetime\tinstant:Datetime\tother:Other(\"char\")",
            "{interface:?}"
        );
        let values: Vec<&str> = values.split('\t').collect();
        assert_eq!(values[0], "Uuid(\"6b1f8d9c-3c4e-4a57-9e2b-0d2f5c6a7b8c\")");
        // jsonb comes back re-serialised by the host, as Spin does.
        let doc = "{\"a\":[1,2]}"
            .bytes()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(values[1], format!("Jsonb([{doc}])"));
        assert_eq!(values[2], "Decimal(\"12.340\")");
        assert_eq!(values[3], "ArrayInt32([Some(1), None, Some(3)])");
        assert_eq!(values[4], "ArrayStr([Some(\"a\"), None, Some(\"c\")])");
        assert_eq!(
            values[5],
            "Interval(Interval { micros: 1500000, days: 2, months: 3 })"
        );
        assert_eq!(
            values[6],
            "RangeInt32((Some((1, RangeBoundKind::Inclusive)), Some((10, RangeBoundKind::Exclusive))))"
        );
        assert_eq!(values[7], "Date((2024, 2, 29))");
        assert_eq!(values[8], "Time((13, 14, 15, 500000000))");
        assert_eq!(values[9], "Datetime((2024, 2, 29, 13, 14, 15, 0))");
        assert_eq!(values[10], "Datetime((2024, 2, 29, 13, 14, 15, 0))");
        assert_eq!(
            values[11], "Unsupported([120])",
            "the raw binary value of 'x'::\"char\""
        );
    }
}

#[tokio::test]
async fn older_postgres_interfaces_see_newer_types_as_unsupported() {
    let platform = TestPlatform::builder().start().await;
    let sql = "SELECT gen_random_uuid() AS id, '2024-02-29'::date AS day";
    let pg3 = ok(
        &platform,
        ("/rdbms-probe", "pg3"),
        POSTGRES,
        "query",
        sql,
        &[],
    )
    .await;
    assert_eq!(pg3.lines().next(), Some("id:Other\tday:Date"));
    assert!(pg3.ends_with("Unsupported\tDate((2024, 2, 29))"), "{pg3}");
    let v2 = ok(
        &platform,
        ("/rdbms-probe", "pg"),
        POSTGRES,
        "query",
        sql,
        &[],
    )
    .await;
    assert_eq!(v2, "id:Other\tday:Other\nUnsupported\tUnsupported");

    let unsigned = failure(
        &platform,
        ("/rdbms-probe", "pg"),
        POSTGRES,
        "SELECT $1",
        &["u8:1"],
    )
    .await;
    assert_eq!(
        unsigned,
        "BadParameter(\"Postgres does not support unsigned integers\")"
    );
}

#[tokio::test]
async fn postgres_errors_are_spins_variants() {
    let platform = TestPlatform::builder().start().await;
    let syntax = failure(&platform, ("/rdbms-probe", "pg4"), POSTGRES, "SELEC 1", &[]).await;
    assert!(
        syntax.starts_with("QueryFailed(DbError(DbError {"),
        "{syntax}"
    );
    assert!(syntax.contains("code: \"42601\""), "{syntax}");
    assert!(syntax.contains("severity: \"ERROR\""), "{syntax}");
    let p3 = failure(
        &platform,
        ("/p3/rdbms-probe", "pg"),
        POSTGRES,
        "SELEC 1",
        &[],
    )
    .await;
    assert!(
        p3.contains("QueryFailed(DbError(DbError {") && p3.contains("42601"),
        "{p3}"
    );
    for db in ["pg", "pg3"] {
        let text = failure(&platform, ("/rdbms-probe", db), POSTGRES, "SELEC 1", &[]).await;
        assert!(text.starts_with("QueryFailed(\""), "{db}: {text}");
        assert!(
            text.contains("42601") || text.contains("syntax error"),
            "{db}: {text}"
        );
    }
    // The server types the parameter; a value of another type is refused before it is sent.
    let mismatch = failure(
        &platform,
        ("/rdbms-probe", "pg4"),
        POSTGRES,
        "SELECT 1 WHERE 1 = $1::int4",
        &["str:one"],
    )
    .await;
    assert!(mismatch.starts_with("QueryFailed(Text("), "{mismatch}");
    assert!(
        mismatch.contains("WrongType { postgres: Int4"),
        "{mismatch}"
    );
    let bad_uuid = failure(
        &platform,
        ("/rdbms-probe", "pg4"),
        POSTGRES,
        "SELECT $1::uuid",
        &["uuid:nope"],
    )
    .await;
    assert_eq!(bad_uuid, "BadParameter(\"invalid UUID nope\")");
}

#[tokio::test]
async fn addresses_outside_allowed_outbound_hosts_are_refused_before_connecting() {
    let platform = TestPlatform::builder().start().await;
    let listener = CountingListener::bind().await;
    let port = listener.port();
    for interface in POSTGRES_INTERFACES {
        let address = format!("postgres://postgres@127.0.0.1:{port}/test");
        let text = failure(&platform, interface, &address, "SELECT 1", &[]).await;
        assert!(
            text.contains(&format!(
                "ConnectionFailed(\"address postgres://127.0.0.1:{port} is not permitted\")"
            )),
            "{interface:?}: {text}"
        );
        let socket = failure(
            &platform,
            interface,
            "host=/var/run/postgresql user=postgres",
            "SELECT 1",
            &[],
        )
        .await;
        assert!(
            socket.contains("Unix sockets are not supported"),
            "{interface:?}: {socket}"
        );
    }
    for interface in MYSQL_INTERFACES {
        let address = format!("mysql://root@127.0.0.1:{port}/test");
        let text = failure(&platform, interface, &address, "SELECT 1", &[]).await;
        assert!(
            text.contains(&format!(
                "ConnectionFailed(\"address mysql://127.0.0.1:{port} is not permitted\")"
            )),
            "{interface:?}: {text}"
        );
        let socket = failure(
            &platform,
            interface,
            "mysql://root@127.0.0.1:3306/test?socket=/run/mysqld/mysqld.sock",
            "SELECT 1",
            &[],
        )
        .await;
        assert!(
            socket.contains("connection parameter `socket` is not supported"),
            "{interface:?}: {socket}"
        );
    }
    listener.assert_never_connected().await;
}

#[tokio::test]
async fn postgres_rows_stream_to_a_wasip3_guest() {
    let platform = TestPlatform::builder().start().await;
    let rows = ok(
        &platform,
        ("/p3/rdbms-probe", "pg"),
        POSTGRES,
        "query",
        "SELECT n FROM generate_series(1, $1) AS n",
        &["i32:2000"],
    )
    .await;
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 2001);
    assert_eq!(lines[1], "Int32(1)");
    assert_eq!(lines[2000], "Int32(2000)");
    // An error after some rows ends the stream with that error.
    let failed = failure(
        &platform,
        ("/p3/rdbms-probe", "pg"),
        POSTGRES,
        "SELECT 10 / (3 - n) FROM generate_series(1, 5) AS n",
        &[],
    )
    .await;
    assert!(failed.contains("22012"), "division by zero: {failed}");
}

#[tokio::test]
async fn a_statement_running_at_the_deadline_is_cancelled_on_the_server() {
    let platform = TestPlatform::builder()
        .limits(|limits| limits.deadline = Duration::from_secs(1))
        .start()
        .await;
    let marker = uuid::Uuid::new_v4().simple().to_string();
    let sql = format!("SELECT pg_sleep(30), '{marker}'");
    let response = call(
        &platform,
        ("/rdbms-probe", "pg4"),
        POSTGRES,
        "query",
        &sql,
        &[],
    )
    .await;
    assert_eq!(
        response.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        response.text()
    );
    let observer = TestPlatform::builder().start().await;
    let running = format!(
        "SELECT count(*)::int4 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%{marker}%' AND query NOT LIKE '%pg_stat_activity%'"
    );
    let give_up = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let count = ok(
            &observer,
            ("/rdbms-probe", "pg4"),
            POSTGRES,
            "query",
            &running,
            &[],
        )
        .await;
        if count.ends_with("\nInt32(0)") {
            break;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "the statement still runs: {count}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn mysql_round_trips_on_both_interfaces() {
    let platform = TestPlatform::builder().start().await;
    for interface in MYSQL_INTERFACES {
        let table = unique_table();
        let create = format!(
            "CREATE TABLE {table} (id INT PRIMARY KEY, small TINYINT, big BIGINT UNSIGNED, \
             name VARCHAR(20), data BLOB, score DOUBLE, note TEXT, day DATE)"
        );
        assert_eq!(
            ok(&platform, interface, MYSQL, "execute", &create, &[]).await,
            "ok"
        );
        let insert = format!(
            "INSERT INTO {table} (id, small, big, name, data, score, note) VALUES (?, ?, ?, ?, ?, ?, ?)"
        );
        ok(
            &platform,
            interface,
            MYSQL,
            "execute",
            &insert,
            &[
                "i32:1",
                "i8:-5",
                "u64:18446744073709551615",
                "str:one",
                "hex:00ff",
                "f64:2.5",
                "null",
            ],
        )
        .await;
        let select = format!(
            "SELECT id, small, big, name, data, score, note, day FROM {table} WHERE id = ?"
        );
        let rows = ok(&platform, interface, MYSQL, "query", &select, &["i32:1"]).await;
        assert_eq!(
            rows,
            "id:Int32\tsmall:Int8\tbig:Uint64\tname:Str\tdata:Binary\tscore:Floating64\tnote:Str\tday:Other\n\
             Int32(1)\tInt8(-5)\tUint64(18446744073709551615)\tStr(\"one\")\tBinary([0, 255])\tFloating64(2.5)\tDbNull\tDbNull",
            "{interface:?}"
        );
        // A value of a type Spin does not map fails the query, as in Spin.
        ok(
            &platform,
            interface,
            MYSQL,
            "execute",
            &format!("UPDATE {table} SET day = '2024-02-29'"),
            &[],
        )
        .await;
        let date = failure(&platform, interface, MYSQL, &select, &["i32:1"]).await;
        assert!(
            date.contains("ValueConversionFailed(\"Cannot convert value in column day"),
            "{interface:?}: {date}"
        );
        let syntax = failure(&platform, interface, MYSQL, "SELEC 1", &[]).await;
        assert!(
            syntax.contains("QueryFailed(\"") && syntax.contains("1064"),
            "{interface:?}: {syntax}"
        );
        ok(
            &platform,
            interface,
            MYSQL,
            "execute",
            &format!("DROP TABLE {table}"),
            &[],
        )
        .await;
    }
}

#[tokio::test]
async fn mysql_rows_stream_to_a_wasip3_guest() {
    let platform = TestPlatform::builder().start().await;
    let rows = ok(
        &platform,
        ("/p3/rdbms-probe", "mysql"),
        MYSQL,
        "query",
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) SELECT i FROM n",
        &["i32:500"],
    )
    .await;
    let lines: Vec<&str> = rows.lines().collect();
    assert_eq!(lines.len(), 501, "{}", lines[0]);
    assert_eq!(lines[500], "Int32(500)");
}
