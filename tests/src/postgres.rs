//! A fresh PostgreSQL database per test, dropped when the test ends, even by a panic. These
//! tests never skip: an unreachable server fails them with instructions.

use sqlx::{AssertSqlSafe, Connection as _, PgConnection};

/// The server's admin database unless `NEXUS_TEST_DATABASE_URL` names another.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const START_POSTGRES: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

fn admin_url() -> String {
    std::env::var("NEXUS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

async fn admin_connection() -> PgConnection {
    let url = admin_url();
    PgConnection::connect(&url).await.unwrap_or_else(|error| {
        panic!(
            "PostgreSQL is required by these tests and is unreachable at NEXUS_TEST_DATABASE_URL \
             (default {DEFAULT_ADMIN_URL}): {error}\nStart it with: {START_POSTGRES}"
        )
    })
}

/// A new, empty database named `nexus_test_<uuid>`; dropping this drops it (connections to it
/// are closed by force).
pub struct FreshDatabase {
    name: String,
    url: String,
}

impl FreshDatabase {
    /// Creates the database.
    pub async fn create() -> Self {
        let name = format!("nexus_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = admin_connection().await;
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|error| panic!("failed to create database {name}: {error}"));
        admin.close().await.ok();
        let mut url = url::Url::parse(&admin_url()).expect("NEXUS_TEST_DATABASE_URL is not a URL");
        url.set_path(&name);
        Self {
            name,
            url: url.to_string(),
        }
    }

    /// `postgres://…/nexus_test_<uuid>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Takes the database away from its clients, as an outage would: open connections are
    /// closed and new ones refused.
    pub async fn refuse_connections(&self) {
        let mut admin = admin_connection().await;
        let name = &self.name;
        for statement in [
            format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false"),
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ),
        ] {
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|error| panic!("failed to cut {name} off: {error}"));
        }
        admin.close().await.ok();
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let name = std::mem::take(&mut self.name);
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread with a
        // runtime of its own can.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("failed to build a runtime to drop the test database");
            runtime.block_on(async {
                let mut admin = admin_connection().await;
                sqlx::query(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .unwrap_or_else(|error| panic!("failed to drop database {name}: {error}"));
            });
        })
        .join();
        if dropped.is_err() && !std::thread::panicking() {
            panic!("failed to drop a test database");
        }
    }
}
