//! Schedules: each tick is advanced once.

use chrono::{TimeDelta, Utc};
use nexus_store::{Error, NewSchedule};

use crate::harness::TestDb;
use crate::projects::create_project;
use crate::users::create_user;

pub async fn a_tick_is_advanced_once_and_schedules_are_listed_and_deleted(db: TestDb) {
    let store = &db.store;
    let owner = create_user(store, "owner@example.com").await;
    let project = create_project(store, "cron", owner.id).await;
    let function = store
        .with_retry(|tx| Box::pin(async move { tx.create_function(project.id, "job").await }))
        .await
        .unwrap();
    let tick = Utc::now() - TimeDelta::seconds(1);
    let new = NewSchedule {
        project_id: project.id,
        name: "nightly".to_owned(),
        function_id: function.id,
        alias: "live".to_owned(),
        agent_id: None,
        cron: Some("0 0 * * *".to_owned()),
        method: "POST".to_owned(),
        path: "/".to_owned(),
        body: b"{}".to_vec(),
        first_fire_at: tick,
    };
    let schedule = store
        .with_retry(|tx| {
            let new = &new;
            Box::pin(async move { tx.create_schedule(new).await })
        })
        .await
        .unwrap();
    assert_eq!(schedule.function, "job");
    let duplicate = store
        .with_retry(|tx| {
            let new = &new;
            Box::pin(async move { tx.create_schedule(new).await })
        })
        .await;
    assert!(matches!(duplicate, Err(Error::Conflict { .. })));

    let now = Utc::now();
    let due = store
        .with_retry(|tx| Box::pin(async move { tx.due_schedules(now, 10).await }))
        .await
        .unwrap();
    assert_eq!(due, [schedule.id]);
    let tick = schedule.next_fire_at.unwrap();
    let next = Some(Utc::now() + TimeDelta::hours(1));
    let advance = || {
        store.with_retry(move |tx| {
            Box::pin(async move { tx.advance_schedule(schedule.id, tick, next).await })
        })
    };
    assert!(advance().await.unwrap());
    assert!(!advance().await.unwrap(), "a tick is advanced once");
    let now = Utc::now();
    let due = store
        .with_retry(|tx| Box::pin(async move { tx.due_schedules(now, 10).await }))
        .await
        .unwrap();
    assert!(due.is_empty());
    let listed = store
        .with_retry(|tx| Box::pin(async move { tx.list_schedules(project.id).await }))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].fired, listed[0].last_fired_at), (1, Some(tick)));

    store
        .with_retry(|tx| Box::pin(async move { tx.delete_schedule(project.id, schedule.id).await }))
        .await
        .unwrap();
    let gone = store
        .with_retry(|tx| Box::pin(async move { tx.get_schedule(project.id, schedule.id).await }))
        .await;
    assert!(matches!(gone, Err(Error::NotFound { .. })));
}
