//! The connection layer against in-memory SQLite: values, statements, parameters, errors,
//! counters, caps, deadlines and which connections share a database. The guests' view of the
//! same behaviour is tested end to end in `tests/tests/e2e/sqlite.rs`.

use std::time::Duration;

use tokio::time::Instant;

use super::databases::SqliteDatabases;
use super::{Connection, Failure, MAX_RESULT_BYTES, QueryResult, Value};

fn connect(databases: &SqliteDatabases, app: &str, label: &str) -> Connection {
    let location = databases.location(app, label).expect("a plain label");
    Connection::new(location, Instant::now() + Duration::from_secs(30))
}

fn memory() -> SqliteDatabases {
    SqliteDatabases::new(None)
}

async fn query(connection: &Connection, sql: &str, parameters: Vec<Value>) -> QueryResult {
    connection
        .query(sql, parameters)
        .await
        .unwrap_or_else(|failure| panic!("{sql}: {failure:?}"))
}

async fn failure(connection: &Connection, sql: &str, parameters: Vec<Value>) -> Failure {
    match connection.query(sql, parameters).await {
        Ok(result) => panic!("{sql} succeeded: {result:?}"),
        Err(failure) => failure,
    }
}

#[tokio::test]
async fn values_of_every_type_round_trip() {
    let databases = memory();
    let connection = connect(&databases, "app", "default");
    query(
        &connection,
        "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n)",
        vec![],
    )
    .await;
    let inserted = vec![
        Value::Integer(i64::MIN),
        Value::Real(-1.5e300),
        Value::Text("zoë 😀".to_owned()),
        Value::Blob(vec![0, 255, 7]),
        Value::Null,
    ];
    query(
        &connection,
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        inserted.clone(),
    )
    .await;
    let result = query(&connection, "SELECT i, r, s, b, n AS absent FROM t", vec![]).await;
    assert_eq!(result.columns, ["i", "r", "s", "b", "absent"]);
    assert_eq!(result.rows, [inserted]);
}

#[tokio::test]
async fn values_come_back_as_sqlite_stored_them() {
    let databases = memory();
    let connection = connect(&databases, "app", "default");
    // Column affinity converts on the way in: REAL keeps 3 as 3.0, TEXT stores 7 as '7',
    // INTEGER stores '12' as 12; a column without a type keeps what it was given.
    query(
        &connection,
        "CREATE TABLE t (r REAL, s TEXT, i INTEGER, any)",
        vec![],
    )
    .await;
    query(
        &connection,
        "INSERT INTO t VALUES (?, ?, ?, ?)",
        vec![
            Value::Integer(3),
            Value::Integer(7),
            Value::Text("12".to_owned()),
            Value::Real(2.0),
        ],
    )
    .await;
    let result = query(
        &connection,
        "SELECT r, s, i, any, 1 + 1, 'x' || 1 FROM t",
        vec![],
    )
    .await;
    assert_eq!(result.columns, ["r", "s", "i", "any", "1 + 1", "'x' || 1"]);
    assert_eq!(
        result.rows,
        [vec![
            Value::Real(3.0),
            Value::Text("7".to_owned()),
            Value::Integer(12),
            Value::Real(2.0),
            Value::Integer(2),
            Value::Text("x1".to_owned()),
        ]]
    );
}

#[tokio::test]
async fn only_the_first_statement_runs() {
    let databases = memory();
    let connection = connect(&databases, "app", "default");
    let result = query(
        &connection,
        "CREATE TABLE a (x); CREATE TABLE b (x)",
        vec![],
    )
    .await;
    assert_eq!(result, QueryResult::default());
    let tables = query(
        &connection,
        "SELECT name FROM sqlite_master ORDER BY name",
        vec![],
    )
    .await;
    assert_eq!(tables.rows, [vec![Value::Text("a".to_owned())]]);
    // An empty statement runs nothing, and what follows it is ignored.
    assert_eq!(
        query(&connection, "; DROP TABLE a", vec![]).await,
        QueryResult::default()
    );
    assert_eq!(
        query(&connection, "-- nothing", vec![]).await,
        QueryResult::default()
    );
    let tables = query(&connection, "SELECT count(*) FROM sqlite_master", vec![]).await;
    assert_eq!(tables.rows, [vec![Value::Integer(1)]]);
}

#[tokio::test]
async fn the_nth_value_binds_to_parameter_n_whatever_its_name() {
    let databases = memory();
    let connection = connect(&databases, "app", "default");
    let texts = |values: &[&str]| {
        values
            .iter()
            .map(|value| Value::Text((*value).to_owned()))
            .collect::<Vec<_>>()
    };
    let result = query(
        &connection,
        "SELECT :b, @a, :b, $c, ?",
        texts(&["1", "2", "3", "4"]),
    )
    .await;
    assert_eq!(result.columns, [":b", "@a", ":b", "$c", "?"]);
    assert_eq!(result.rows, [texts(&["1", "2", "1", "3", "4"])]);
    let result = query(&connection, "SELECT ?2, ?, ?1", texts(&["1", "2", "3"])).await;
    assert_eq!(result.rows, [texts(&["2", "3", "1"])]);
}

#[tokio::test]
async fn a_wrong_parameter_count_fails_as_in_rusqlite() {
    let databases = memory();
    let connection = connect(&databases, "app", "default");
    let one = || vec![Value::Integer(1)];
    for (sql, parameters, message) in [
        ("SELECT ?, ?", one(), "Got 1, needed 2"),
        ("SELECT 1", one(), "Got 1, needed 0"),
        ("SELECT ?", vec![Value::Null; 5], "Got 2, needed 1"),
        ("SELECT ?3", one(), "Got 1, needed 3"),
    ] {
        assert_eq!(
            failure(&connection, sql, parameters).await,
            Failure::Io(format!(
                "Wrong number of parameters passed to query. {message}"
            )),
            "{sql}"
        );
    }
}

#[tokio::test]
async fn sqlite_errors_are_io_with_sqlites_message() {
    let databases = memory();
    let connection = connect(&databases, "app", "default");
    query(
        &connection,
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v NOT NULL)",
        vec![],
    )
    .await;
    for (sql, message) in [
        ("SELEC 1", "near \"SELEC\": syntax error"),
        ("SELECT * FROM missing", "no such table: missing"),
        (
            "INSERT INTO t (v) VALUES (NULL)",
            "NOT NULL constraint failed: t.v",
        ),
    ] {
        assert_eq!(
            failure(&connection, sql, vec![]).await,
            Failure::Io(message.to_owned()),
            "{sql}"
        );
    }
    // The connection still works afterwards.
    let result = query(&connection, "SELECT count(*) FROM t", vec![]).await;
    assert_eq!(result.rows, [vec![Value::Integer(0)]]);
}

#[tokio::test]
async fn counters_follow_the_connections_own_statements() {
    let databases = memory();
    let connection = connect(&databases, "app", "default");
    assert_eq!(
        (
            connection.last_insert_rowid().await,
            connection.changes().await
        ),
        (0, 0)
    );
    query(&connection, "CREATE TABLE t (v)", vec![]).await;
    query(&connection, "INSERT INTO t VALUES (1), (2), (3)", vec![]).await;
    assert_eq!(
        (
            connection.last_insert_rowid().await,
            connection.changes().await
        ),
        (3, 3)
    );
    query(&connection, "UPDATE t SET v = 0 WHERE v > 1", vec![]).await;
    query(&connection, "SELECT * FROM t", vec![]).await;
    assert_eq!(
        (
            connection.last_insert_rowid().await,
            connection.changes().await
        ),
        (3, 2)
    );
    // Another connection to the same database has counters of its own.
    let other = connect(&databases, "app", "default");
    query(&other, "SELECT * FROM t", vec![]).await;
    assert_eq!(
        (other.last_insert_rowid().await, other.changes().await),
        (0, 0)
    );
}

#[tokio::test]
async fn memory_databases_are_shared_per_app_and_label_only() {
    let databases = memory();
    let writer = connect(&databases, "app", "default");
    query(&writer, "CREATE TABLE t (v)", vec![]).await;
    query(&writer, "INSERT INTO t VALUES ('kept')", vec![]).await;
    drop(writer);
    // The database outlives its connections, for the lifetime of the runtime's databases.
    let reader = connect(&databases, "app", "default");
    let result = query(&reader, "SELECT v FROM t", vec![]).await;
    assert_eq!(result.rows, [vec![Value::Text("kept".to_owned())]]);
    for (databases, app, label) in [
        (&databases, "app", "other"),
        (&databases, "another-app", "default"),
        (&memory(), "app", "default"),
    ] {
        let isolated = connect(databases, app, label);
        assert_eq!(
            failure(&isolated, "SELECT v FROM t", vec![]).await,
            Failure::Io("no such table: t".to_owned()),
            "{app}/{label}"
        );
    }
}

#[tokio::test]
async fn labels_that_cannot_name_a_database_have_none() {
    let databases = memory();
    assert!(databases.location("app", "../escape").is_none());
    assert!(databases.location("app", "").is_none());
}

#[tokio::test]
async fn result_sets_are_capped() {
    let databases = memory();
    let connection = connect(&databases, "app", "default");
    let rows = MAX_RESULT_BYTES / (1024 * 1024) + 1;
    let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) \
               SELECT zeroblob(1048576) FROM n";
    assert_eq!(
        failure(
            &connection,
            sql,
            vec![Value::Integer(i64::try_from(rows).unwrap())]
        )
        .await,
        Failure::Io(format!(
            "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
        ))
    );
    let under = query(&connection, sql, vec![Value::Integer(2)]).await;
    assert_eq!(under.rows.len(), 2);
}

#[tokio::test]
async fn a_runaway_statement_is_interrupted_at_the_deadline() {
    let databases = memory();
    let location = databases.location("app", "default").unwrap();
    let connection = Connection::new(location, Instant::now() + Duration::from_millis(300));
    let started = std::time::Instant::now();
    let endless = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                   SELECT count(*) FROM n";
    let Failure::Io(message) = failure(&connection, endless, vec![]).await else {
        panic!("not an io failure");
    };
    assert!(message.contains("interrupted"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn streamed_rows_arrive_in_order_then_the_outcome() {
    let databases = memory();
    let connection = connect(&databases, "app", "default");
    let sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) \
               SELECT i FROM n";
    let mut stream = connection.query_stream(sql, vec![]).await.unwrap();
    assert_eq!(stream.columns, ["i"]);
    let mut received = Vec::new();
    while let Some(row) = stream.rows.recv().await {
        received.push(row);
    }
    let expected: Vec<_> = (1..=100).map(|i| vec![Value::Integer(i)]).collect();
    assert_eq!(received, expected);
    assert_eq!(stream.outcome.await.unwrap(), Ok(()));

    // Preparing fails before any stream exists; a failing step fails the outcome.
    assert!(matches!(
        connection.query_stream("SELEC 1", vec![]).await,
        Err(Failure::Io(message)) if message == "near \"SELEC\": syntax error"
    ));
    query(&connection, "CREATE TABLE t (v UNIQUE)", vec![]).await;
    let mut stream = connection
        .query_stream("INSERT INTO t VALUES (1), (1) RETURNING v", vec![])
        .await
        .unwrap();
    while stream.rows.recv().await.is_some() {}
    assert_eq!(
        stream.outcome.await.unwrap(),
        Err(Failure::Io("UNIQUE constraint failed: t.v".to_owned()))
    );
}

#[tokio::test]
async fn open_checks_the_permission_then_the_label_then_the_count() {
    use std::sync::Arc;

    use wasmtime::component::ResourceTable;

    use super::{MAX_OPEN_CONNECTIONS, SqliteAccess, SqliteState, SqliteView};

    let databases = Arc::new(memory());
    let allowed = ["default".to_owned(), "../escape".to_owned()];
    let access = SqliteAccess::new(&databases, "app", &allowed);
    let mut state = SqliteState::default();
    let mut table = ResourceTable::new();
    let mut view = SqliteView {
        access: &access,
        state: &mut state,
        table: &mut table,
        deadline: Instant::now() + Duration::from_secs(30),
    };
    assert_eq!(
        view.open("secret").unwrap().err(),
        Some(Failure::AccessDenied)
    );
    assert_eq!(
        view.open("../escape").unwrap().err(),
        Some(Failure::NoSuchDatabase)
    );
    let mut handles = Vec::new();
    for _ in 0..MAX_OPEN_CONNECTIONS {
        handles.push(view.open("default").unwrap().unwrap());
    }
    assert_eq!(
        view.open("default").unwrap().err(),
        Some(Failure::Io("too many connections opened".to_owned()))
    );
    // Closing one makes room for another.
    let closed = handles.pop().unwrap();
    view.close(closed).unwrap();
    assert!(view.open("default").unwrap().is_ok());
}
