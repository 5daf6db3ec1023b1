//! Agents.

use std::time::Duration;

use nexus_store::{
    Agent, AgentId, AgentLease, AgentState, Error, HolderId, LeaseHeld, NewAgent, ProjectId, Store,
};

use crate::harness::TestDb;
use crate::projects::create_project;
use crate::users::create_user;

async fn create_function(
    store: &Store,
    project_id: ProjectId,
    name: &'static str,
) -> nexus_store::Function {
    store
        .with_retry(|tx| Box::pin(async move { tx.create_function(project_id, name).await }))
        .await
        .unwrap()
}

async fn create_agent(store: &Store, new_agent: &NewAgent) -> Result<Agent, Error> {
    store
        .with_retry(|tx| Box::pin(async move { tx.create_agent(new_agent).await }))
        .await
}

fn one_agent(
    project: &nexus_store::Project,
    function: &nexus_store::Function,
    name: &str,
) -> NewAgent {
    NewAgent {
        project_id: project.id,
        function_id: function.id,
        name: name.to_owned(),
        alias: "live".to_owned(),
    }
}

async fn names(
    store: &Store,
    project_id: ProjectId,
    after: Option<&str>,
    limit: u32,
) -> Vec<String> {
    let after = after.map(str::to_owned);
    store
        .with_retry(|tx| {
            let after = after.clone();
            Box::pin(async move { tx.list_agents(project_id, after.as_deref(), limit).await })
        })
        .await
        .unwrap()
        .into_iter()
        .map(|agent| agent.name)
        .collect()
}

pub async fn agents_are_created_paged_changed_and_deleted(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project = create_project(store, "agents", owner.id).await;
    let other = create_project(store, "others", owner.id).await;
    let function = create_function(store, project.id, "counter").await;
    let foreign = create_function(store, other.id, "counter").await;
    let new_agent = |name: &str| NewAgent {
        project_id: project.id,
        function_id: function.id,
        name: name.to_owned(),
        alias: "live".to_owned(),
    };

    let mut created = Vec::new();
    for name in ["carol", "alice", "bob"] {
        created.push(create_agent(store, &new_agent(name)).await.unwrap());
    }
    let alice = created[1].clone();
    assert_eq!(alice.state, AgentState::Active);
    assert_eq!(
        (alice.name.as_str(), alice.alias.as_str()),
        ("alice", "live")
    );
    let duplicate = create_agent(store, &new_agent("alice")).await;
    assert!(
        matches!(duplicate, Err(Error::Conflict { .. })),
        "{duplicate:?}"
    );
    let across = create_agent(
        store,
        &NewAgent {
            function_id: foreign.id,
            ..new_agent("mallory")
        },
    )
    .await;
    assert!(matches!(across, Err(Error::NotFound { .. })), "{across:?}");

    let (project_id, alice_id) = (project.id, alice.id);
    let fetched = store
        .with_retry(|tx| Box::pin(async move { tx.get_agent(project_id, alice_id).await }))
        .await
        .unwrap();
    assert_eq!(fetched, alice);
    let other_id = other.id;
    let elsewhere = store
        .with_retry(|tx| Box::pin(async move { tx.get_agent(other_id, alice_id).await }))
        .await;
    assert!(
        matches!(elsewhere, Err(Error::NotFound { .. })),
        "{elsewhere:?}"
    );

    assert_eq!(names(store, project.id, None, 2).await, ["alice", "bob"]);
    assert_eq!(names(store, project.id, Some("bob"), 2).await, ["carol"]);
    assert!(names(store, project.id, Some("carol"), 2).await.is_empty());
    assert!(names(store, other.id, None, 10).await.is_empty());

    let suspended = store
        .with_retry(|tx| {
            Box::pin(async move {
                tx.set_agent_state(project_id, alice_id, AgentState::Suspended)
                    .await
            })
        })
        .await
        .unwrap();
    assert_eq!(suspended.state, AgentState::Suspended);
    assert!(suspended.updated_at >= alice.updated_at);
    assert_eq!(suspended.created_at, alice.created_at);
    let not_ours = store
        .with_retry(|tx| {
            Box::pin(async move {
                tx.set_agent_state(other_id, alice_id, AgentState::Idle)
                    .await
            })
        })
        .await;
    assert!(
        matches!(not_ours, Err(Error::NotFound { .. })),
        "{not_ours:?}"
    );

    for expected_gone in [false, true] {
        let deleted = store
            .with_retry(|tx| Box::pin(async move { tx.delete_agent(project_id, alice_id).await }))
            .await;
        if expected_gone {
            assert!(
                matches!(deleted, Err(Error::NotFound { .. })),
                "{deleted:?}"
            );
        } else {
            deleted.unwrap();
        }
    }
    assert_eq!(names(store, project.id, None, 10).await, ["bob", "carol"]);
}

pub async fn a_deleted_project_takes_its_agents_with_it(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project = create_project(store, "agents", owner.id).await;
    let function = create_function(store, project.id, "counter").await;
    let agent = create_agent(store, &one_agent(&project, &function, "alice"))
        .await
        .unwrap();
    let project_id = project.id;
    store
        .with_retry(|tx| Box::pin(async move { tx.delete_project(project_id).await }))
        .await
        .unwrap();
    let agent_id = agent.id;
    let gone = store
        .with_retry(|tx| Box::pin(async move { tx.get_agent(project_id, agent_id).await }))
        .await;
    assert!(matches!(gone, Err(Error::NotFound { .. })), "{gone:?}");
    assert_eq!(db.execute("DELETE FROM agents").await, 0);
}

async fn acquire(
    store: &Store,
    agent: AgentId,
    holder: HolderId,
    ttl: Duration,
) -> Result<AgentLease, LeaseHeld> {
    store
        .with_retry(|tx| Box::pin(async move { tx.acquire_agent_lease(agent, holder, ttl).await }))
        .await
        .unwrap()
}

pub async fn an_agent_lease_has_one_holder_and_changes_hands_with_a_new_epoch(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project = create_project(store, "leases", owner.id).await;
    let function = create_function(store, project.id, "counter").await;
    let agent = create_agent(store, &one_agent(&project, &function, "leased"))
        .await
        .unwrap();
    let (first, second) = (HolderId::new(), HolderId::new());
    let long = Duration::from_secs(60);

    let taken = acquire(store, agent.id, first, long).await.unwrap();
    assert_eq!(taken.epoch, 1);
    let refused = acquire(store, agent.id, second, long).await.unwrap_err();
    assert_eq!(refused.until, taken.expires_at);
    let extended = acquire(store, agent.id, first, long).await.unwrap();
    assert_eq!(extended.epoch, 1, "the holder extending keeps its epoch");
    assert!(extended.expires_at >= taken.expires_at);

    // A lease that has run out goes to the next taker, one epoch later.
    acquire(store, agent.id, first, Duration::ZERO)
        .await
        .unwrap();
    let took_over = acquire(store, agent.id, second, long).await.unwrap();
    assert_eq!(took_over.epoch, 2);

    // Only the holder can give it up; then anyone may take it.
    let release = |holder: HolderId| {
        store.with_retry(move |tx| {
            Box::pin(async move { tx.release_agent_lease(agent.id, holder).await })
        })
    };
    assert!(!release(first).await.unwrap());
    assert!(acquire(store, agent.id, first, long).await.is_err());
    assert!(release(second).await.unwrap());
    assert_eq!(
        acquire(store, agent.id, first, long).await.unwrap().epoch,
        1
    );

    // Deleting the agent takes its lease with it.
    store
        .with_retry(|tx| Box::pin(async move { tx.delete_agent(project.id, agent.id).await }))
        .await
        .unwrap();
    assert!(!release(first).await.unwrap());
}

pub async fn an_agent_of_an_alias_is_created_with_function_and_alias_checked(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let outsider = create_user(store, "outsider@example.com").await;
    let project = create_project(store, "aliases", owner.id).await;
    let function = create_function(store, project.id, "counter").await;
    let function_id = function.id;
    let new_version = &nexus_store::NewFunctionVersion {
        spec: serde_json::json!({ "routes": ["/..."] }),
        component_digests: vec![format!("sha256:{:064}", 1)],
    };
    store
        .with_retry(|tx| {
            Box::pin(async move {
                tx.create_function_version(function_id, new_version).await?;
                tx.set_alias(function_id, "live", 1, None).await
            })
        })
        .await
        .unwrap();
    let create = |function: &'static str, alias: &'static str, name: &'static str| {
        let project_id = project.id;
        store.with_retry(move |tx| {
            Box::pin(async move {
                tx.create_agent_of_alias(project_id, function, alias, name)
                    .await
            })
        })
    };

    let agent = create("counter", "live", "a1").await.unwrap();
    assert_eq!(
        (
            agent.function_id,
            agent.function.as_str(),
            agent.alias.as_str()
        ),
        (function.id, "counter", "live")
    );
    assert_eq!(agent.state, AgentState::Active);
    assert!(matches!(
        create("nope", "live", "a2").await,
        Err(Error::NotFound { what: "function" })
    ));
    assert!(matches!(
        create("counter", "beta", "a2").await,
        Err(Error::NotFound { what: "alias" })
    ));
    assert!(matches!(
        create("counter", "live", "a1").await,
        Err(Error::Conflict { .. })
    ));

    // The project and a user's role in it, read together.
    let (found, role) = store
        .with_retry(|tx| {
            Box::pin(async move { tx.get_project_and_role("aliases", owner.id).await })
        })
        .await
        .unwrap();
    assert_eq!(
        (found.id, role),
        (project.id, Some(nexus_store::Role::Owner))
    );
    let (_, role) = store
        .with_retry(|tx| {
            Box::pin(async move { tx.get_project_and_role("aliases", outsider.id).await })
        })
        .await
        .unwrap();
    assert_eq!(role, None);
    assert!(matches!(
        store
            .with_retry(|tx| Box::pin(
                async move { tx.get_project_and_role("missing", owner.id).await }
            ))
            .await,
        Err(Error::NotFound { what: "project" })
    ));
}
