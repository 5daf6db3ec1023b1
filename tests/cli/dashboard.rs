//! The dashboard in a real browser: headless Chromium signs in at `/dashboard` of a cluster's
//! coordinator, sees its edge node and its function, and sees an invocation arrive live over
//! `/ws/events`; a screenshot of the page is saved.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test reports failures by panicking"
)]

use http::StatusCode;
use nexus_tests::postgres::FreshDatabase;

#[path = "cluster/processes.rs"]
#[allow(dead_code, reason = "the cluster tests use the rest")]
mod processes;

#[path = "dashboard/browser.rs"]
mod browser;

use browser::Browser;
use processes::{Coordinator, Edge};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_signs_in_shows_the_node_and_an_invocation_arriving_live() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    let edge = Edge::start(&coordinator, "edge-a", &state.path().join("edge-a")).await;
    coordinator.deploy().await;

    let mut browser = Browser::start().await;
    browser
        .navigate(&format!("{}/dashboard#project=shop", coordinator.base))
        .await;
    browser.wait_for("#login button", "").await;
    browser
        .evaluate(
            r#"(() => {
                const form = document.getElementById('login');
                form.elements.email.value = 'ops@example.com';
                form.elements.password.value = 'correct horse';
                form.querySelector('button').click();
            })()"#,
        )
        .await;
    let node = browser
        .wait_for(&format!(r#"#nodes [data-node="{}"]"#, edge.id), "edge-a")
        .await;
    assert!(node.contains("active"), "{node}");
    browser
        .wait_for(r#"#functions [data-function="echo"]"#, "live")
        .await;
    // Subscribed: an event published from now on reaches the page.
    browser.wait_for("#live", "live").await;

    let echoed = coordinator.invoke().await;
    assert_eq!(echoed.status, StatusCode::OK, "{}", echoed.text());
    let row = browser
        .wait_for(
            r#"#invocations tr.invocation[data-function="echo"][data-status="200"]"#,
            "echo",
        )
        .await;
    assert!(row.contains("200"), "{row}");

    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let size = browser.screenshot(&screenshot).await;
    assert!(size > 10_000, "a {size}-byte screenshot is blank");
    println!("dashboard screenshot: {}", screenshot.display());
}
