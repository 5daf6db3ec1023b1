//! Migrations: both sets match, and applying them is idempotent and safe to race.

use std::collections::BTreeSet;
use std::path::Path;

use crate::harness::TestDb;

pub async fn migrate_is_idempotent_and_serialised(db: TestDb) {
    // The harness migrated once; two more "processes" race to migrate again.
    let first = db.reconnect().await;
    let second = db.reconnect().await;
    let (a, b) = tokio::join!(first.migrate(), second.migrate());
    a.unwrap();
    b.unwrap();
    db.store.migrate().await.unwrap();
    // The lock row is released.
    assert_eq!(db.execute("DELETE FROM nexus_migration_lock").await, 0);
    first.close().await;
    second.close().await;
}

fn migration_files(backend: &str) -> BTreeSet<String> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../migrations")
        .join(backend);
    std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", directory.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn both_backends_have_the_same_migrations() {
    let postgres = migration_files("postgres");
    let sqlite = migration_files("sqlite");
    assert!(!postgres.is_empty());
    assert_eq!(postgres, sqlite);
    for name in &postgres {
        let (version, rest) = name.split_once('_').expect("NNNN_verb_noun.{up,down}.sql");
        assert!(
            version.len() == 4 && version.bytes().all(|b| b.is_ascii_digit()),
            "{name}"
        );
        assert!(
            rest.ends_with(".up.sql") || rest.ends_with(".down.sql"),
            "{name}"
        );
    }
}
