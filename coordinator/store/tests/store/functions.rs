//! Functions, versions and aliases.

use std::collections::BTreeMap;

use nexus_store::{Error, NewFunctionVersion};
use serde_json::json;

use crate::harness::TestDb;
use crate::projects::create_project;
use crate::users::create_user;

pub async fn functions_versions_and_aliases(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project = create_project(store, "fn", owner.id).await;
    let project_id = project.id;

    let function = store
        .with_retry(|tx| Box::pin(async move { tx.create_function(project_id, "hello").await }))
        .await
        .unwrap();
    let duplicate = store
        .with_retry(|tx| Box::pin(async move { tx.create_function(project_id, "hello").await }))
        .await;
    assert!(
        matches!(duplicate, Err(Error::Conflict { .. })),
        "{duplicate:?}"
    );
    let fetched = store
        .with_retry(|tx| Box::pin(async move { tx.get_function(project_id, "hello").await }))
        .await
        .unwrap();
    assert_eq!(fetched, function);

    let function_id = function.id;
    let mut versions = Vec::new();
    for index in 1..=2 {
        let new_version = &NewFunctionVersion {
            spec: json!({ "routes": ["/..."], "index": index }),
            component_digests: vec![format!("sha256:{index:064}")],
        };
        versions.push(
            store
                .with_retry(|tx| {
                    Box::pin(
                        async move { tx.create_function_version(function_id, new_version).await },
                    )
                })
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2]
    );
    let second = store
        .with_retry(|tx| Box::pin(async move { tx.get_function_version(function_id, 2).await }))
        .await
        .unwrap();
    assert_eq!(second, versions[1]);
    assert_eq!(second.spec["index"], 2);
    assert_eq!(
        second.component_digests,
        json!([format!("sha256:{:064}", 2)])
    );
    let listed = store
        .with_retry(|tx| Box::pin(async move { tx.list_function_versions(function_id).await }))
        .await
        .unwrap();
    assert_eq!(listed, versions);

    // live → 2 with 10 % on 1, then rolled back to 1 alone.
    let canary = store
        .with_retry(|tx| {
            Box::pin(async move { tx.set_alias(function_id, "live", 2, Some((1, 10))).await })
        })
        .await
        .unwrap();
    assert_eq!(
        (canary.version_a, canary.version_b, canary.weight_b),
        (2, Some(1), 10)
    );
    store
        .with_retry(|tx| Box::pin(async move { tx.set_alias(function_id, "live", 1, None).await }))
        .await
        .unwrap();
    let live = store
        .with_retry(|tx| Box::pin(async move { tx.get_alias(function_id, "live").await }))
        .await
        .unwrap();
    assert_eq!(
        (live.version_a, live.version_b, live.weight_b),
        (1, None, 0)
    );

    let missing = store
        .with_retry(|tx| Box::pin(async move { tx.set_alias(function_id, "live", 3, None).await }))
        .await;
    assert!(
        matches!(
            missing,
            Err(Error::NotFound {
                what: "function version"
            })
        ),
        "{missing:?}"
    );
    let bad_weight = store
        .with_retry(|tx| {
            Box::pin(async move { tx.set_alias(function_id, "live", 1, Some((2, 101))).await })
        })
        .await;
    assert!(
        matches!(bad_weight, Err(Error::Invalid { .. })),
        "{bad_weight:?}"
    );
}

pub async fn rollback_returns_to_the_previous_target(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project_id = create_project(store, "rb", owner.id).await.id;
    let function_id = store
        .with_retry(|tx| Box::pin(async move { tx.create_function(project_id, "app").await }))
        .await
        .unwrap()
        .id;
    for _ in 1..=3 {
        let new_version = &NewFunctionVersion {
            spec: json!({}),
            component_digests: vec![],
        };
        store
            .with_retry(|tx| {
                Box::pin(async move { tx.create_function_version(function_id, new_version).await })
            })
            .await
            .unwrap();
    }
    let set = |version_a: i64, canary: Option<(i64, i32)>| async move {
        store
            .with_retry(|tx| {
                Box::pin(async move { tx.set_alias(function_id, "live", version_a, canary).await })
            })
            .await
            .unwrap()
    };
    let rollback = || async {
        store
            .with_retry(|tx| Box::pin(async move { tx.rollback_alias(function_id, "live").await }))
            .await
    };

    let first = set(1, None).await;
    assert_eq!(first.previous_version_a, None);
    let never_moved = rollback().await;
    assert!(
        matches!(never_moved, Err(Error::Conflict { .. })),
        "{never_moved:?}"
    );

    set(2, Some((3, 25))).await;
    let moved = set(3, None).await;
    assert_eq!(
        (
            moved.previous_version_a,
            moved.previous_version_b,
            moved.previous_weight_b
        ),
        (Some(2), Some(3), Some(25))
    );
    // Back to the canary it had, and a second rollback undoes the first.
    let back = rollback().await.unwrap();
    assert_eq!(
        (back.version_a, back.version_b, back.weight_b),
        (2, Some(3), 25)
    );
    let again = rollback().await.unwrap();
    assert_eq!(
        (again.version_a, again.version_b, again.weight_b),
        (3, None, 0)
    );

    store
        .with_retry(|tx| Box::pin(async move { tx.set_alias(function_id, "beta", 1, None).await }))
        .await
        .unwrap();
    let aliases = store
        .with_retry(|tx| Box::pin(async move { tx.list_aliases(function_id).await }))
        .await
        .unwrap();
    assert_eq!(
        aliases
            .iter()
            .map(|alias| alias.name.as_str())
            .collect::<Vec<_>>(),
        ["beta", "live"]
    );
    store
        .with_retry(|tx| Box::pin(async move { tx.create_function(project_id, "another").await }))
        .await
        .unwrap();
    let functions = store
        .with_retry(|tx| Box::pin(async move { tx.list_functions(project_id).await }))
        .await
        .unwrap();
    assert_eq!(
        functions
            .iter()
            .map(|function| function.name.as_str())
            .collect::<Vec<_>>(),
        ["another", "app"]
    );
}

pub async fn priority_is_set_per_function(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project_id = create_project(store, "prio", owner.id).await.id;
    let mut created = Vec::new();
    for name in ["busy", "quiet"] {
        created.push(
            store
                .with_retry(|tx| {
                    Box::pin(async move { tx.create_function(project_id, name).await })
                })
                .await
                .unwrap(),
        );
    }
    // A new function is in the column's default class.
    assert_eq!(created[0].priority, "normal");
    assert_eq!(created[1].priority, "normal");

    let busy_id = created[0].id;
    let updated = store
        .with_retry(|tx| Box::pin(async move { tx.set_function_priority(busy_id, "high").await }))
        .await
        .unwrap();
    assert_eq!(
        updated,
        nexus_store::Function {
            priority: "high".to_owned(),
            ..created[0].clone()
        }
    );
    let fetched = store
        .with_retry(|tx| Box::pin(async move { tx.get_function(project_id, "busy").await }))
        .await
        .unwrap();
    assert_eq!(fetched, updated);
    // Only that function changed.
    let listed = store
        .with_retry(|tx| Box::pin(async move { tx.list_functions(project_id).await }))
        .await
        .unwrap();
    assert_eq!(listed, [updated, created[1].clone()]);

    // Setting it again replaces it.
    let lowered = store
        .with_retry(|tx| Box::pin(async move { tx.set_function_priority(busy_id, "low").await }))
        .await
        .unwrap();
    assert_eq!(lowered.priority, "low");

    let missing_id = nexus_store::FunctionId::new();
    let missing = store
        .with_retry(|tx| {
            Box::pin(async move { tx.set_function_priority(missing_id, "high").await })
        })
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound { what: "function" })),
        "{missing:?}"
    );
}

pub async fn node_selector_is_set_per_function(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project_id = create_project(store, "placed", owner.id).await.id;
    let mut created = Vec::new();
    for name in ["gpu", "anywhere"] {
        created.push(
            store
                .with_retry(|tx| {
                    Box::pin(async move { tx.create_function(project_id, name).await })
                })
                .await
                .unwrap(),
        );
    }
    // A new function selects no labels: any node may run it.
    assert!(created[0].node_selector.is_empty());
    assert!(created[1].node_selector.is_empty());

    let gpu_id = created[0].id;
    let selector: BTreeMap<String, String> = [
        ("gpu", "true"),
        ("example.com/zone", "eu-west-1a"),
        ("tier", ""),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    let updated = store
        .with_retry(|tx| {
            let selector = selector.clone();
            Box::pin(async move { tx.set_function_node_selector(gpu_id, &selector).await })
        })
        .await
        .unwrap();
    assert_eq!(
        updated,
        nexus_store::Function {
            node_selector: selector.clone(),
            ..created[0].clone()
        }
    );
    // Read back the same by every query that selects functions.
    let fetched = store
        .with_retry(|tx| Box::pin(async move { tx.get_function(project_id, "gpu").await }))
        .await
        .unwrap();
    assert_eq!(fetched, updated);
    let listed = store
        .with_retry(|tx| Box::pin(async move { tx.list_functions(project_id).await }))
        .await
        .unwrap();
    assert_eq!(listed, [created[1].clone(), updated.clone()]);
    // The priority is a separate setting: changing it keeps the selector.
    let prioritised = store
        .with_retry(|tx| Box::pin(async move { tx.set_function_priority(gpu_id, "high").await }))
        .await
        .unwrap();
    assert_eq!(prioritised.node_selector, selector);

    // An empty selector clears it.
    let cleared = store
        .with_retry(|tx| {
            Box::pin(async move {
                tx.set_function_node_selector(gpu_id, &BTreeMap::new())
                    .await
            })
        })
        .await
        .unwrap();
    assert!(cleared.node_selector.is_empty());
    assert_eq!(cleared.priority, "high");

    let missing_id = nexus_store::FunctionId::new();
    let missing = store
        .with_retry(|tx| {
            let selector = selector.clone();
            Box::pin(async move { tx.set_function_node_selector(missing_id, &selector).await })
        })
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound { what: "function" })),
        "{missing:?}"
    );

    // A stored selector that is not an object of strings is a corrupt row, not "no labels".
    assert_corrupt_column(
        &db,
        project_id,
        "gpu",
        "node_selector",
        &["[\"gpu\"]", "{\"gpu\": true}", "not json"],
    )
    .await;
}

pub async fn async_retry_is_set_per_function(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project_id = create_project(store, "retry", owner.id).await.id;
    let created = store
        .with_retry(|tx| Box::pin(async move { tx.create_function(project_id, "jobs").await }))
        .await
        .unwrap();
    assert_eq!(created.async_retry, nexus_store::AsyncRetry::default());
    let policy = nexus_store::AsyncRetry {
        max_attempts: 5,
        max_age_ms: 60_000,
        backoff_ms: 10,
    };
    let updated = store
        .with_retry(|tx| {
            Box::pin(async move { tx.set_function_async_retry(created.id, policy).await })
        })
        .await
        .unwrap();
    assert_eq!(updated.async_retry, policy);
    let read = store
        .with_retry(|tx| Box::pin(async move { tx.get_function_by_id(created.id).await }))
        .await
        .unwrap();
    assert_eq!(read, updated);
}

pub async fn placement_and_cloud_targets_are_set_per_function(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project_id = create_project(store, "clouds", owner.id).await.id;
    let created = store
        .with_retry(|tx| Box::pin(async move { tx.create_function(project_id, "burst").await }))
        .await
        .unwrap();
    // A new function runs on the edge and names no cloud.
    assert_eq!(created.placement, "edge");
    assert!(created.cloud_targets.is_empty());

    let targets =
        serde_json::json!({"aws_lambda": {"function": "burst-fn", "region": "eu-west-1"}});
    let targets = targets.as_object().unwrap().clone();
    let function_id = created.id;
    let updated = store
        .with_retry(|tx| {
            let targets = targets.clone();
            Box::pin(async move {
                tx.set_function_placement(function_id, "auto", &targets)
                    .await
            })
        })
        .await
        .unwrap();
    assert_eq!(
        updated,
        nexus_store::Function {
            placement: "auto".to_owned(),
            cloud_targets: targets.clone(),
            ..created.clone()
        }
    );
    let fetched = store
        .with_retry(|tx| Box::pin(async move { tx.get_function(project_id, "burst").await }))
        .await
        .unwrap();
    assert_eq!(fetched, updated);
    // Other settings keep the placement.
    let prioritised = store
        .with_retry(|tx| {
            Box::pin(async move { tx.set_function_priority(function_id, "high").await })
        })
        .await
        .unwrap();
    assert_eq!(
        (prioritised.placement.as_str(), &prioritised.cloud_targets),
        ("auto", &targets)
    );

    // Targets that are not a JSON object are a corrupt row, not "no cloud".
    assert_corrupt_column(
        &db,
        project_id,
        "burst",
        "cloud_targets",
        &["[1]", "not json"],
    )
    .await;
}

/// Each of `values`, written by hand into `column` of function `name`, makes every query that
/// reads the function answer a corrupt row.
async fn assert_corrupt_column(
    db: &TestDb,
    project_id: nexus_store::ProjectId,
    name: &'static str,
    column: &str,
    values: &[&str],
) {
    let store = &db.store;
    for value in values {
        let edited = db
            .execute(&format!(
                "UPDATE functions SET {column} = '{value}' WHERE name = '{name}'"
            ))
            .await;
        assert_eq!(edited, 1);
        let read = store
            .with_retry(|tx| Box::pin(async move { tx.get_function(project_id, name).await }))
            .await;
        let listed = store
            .with_retry(|tx| Box::pin(async move { tx.list_functions(project_id).await }))
            .await;
        for answer in [read.map(drop), listed.map(drop)] {
            assert!(
                matches!(
                    answer,
                    Err(Error::Corrupt {
                        table: "functions",
                        ..
                    })
                ),
                "{column} = {value}: {answer:?}"
            );
        }
    }
}
