//! More of the `nexus` command line against a real coordinator (`nexus coordinator`, runtime in
//! process): functions (settings, aliases, canaries, rollback), members, API keys, schedules,
//! sessions, and agents messaged and their context read and written. The test sets the stage
//! through the same typed client the commands use, and reads the commands' `--json`.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test reports failures by panicking"
)]

use std::path::Path;

use nexus_client::{Client, DeployAlias, Upload};
use nexus_tests::{COUNTER_APP, app_tar};
use serde_json::Value;

#[path = "cluster/processes.rs"]
#[allow(dead_code, reason = "the cluster tests use the rest")]
mod processes;

#[path = "commands/support.rs"]
mod support;

use support::{nexus, start};

/// A `nexus` run in project `shop` that must succeed; its standard output.
async fn shop(base: &str, config: &Path, args: &[&str]) -> String {
    let args: Vec<&str> = args.iter().copied().chain(["--project", "shop"]).collect();
    let ran = nexus(base, config, &args, "").await;
    assert!(ran.ok, "nexus {args:?} failed: {}", ran.stderr);
    ran.stdout
}

/// A `nexus … --json` run in project `shop` that must succeed; the JSON it printed.
async fn shop_json(base: &str, config: &Path, args: &[&str]) -> Value {
    let args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
    let stdout = shop(base, config, &args).await;
    serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("{args:?}: {error}: {stdout}"))
}

/// A `nexus` run in project `shop` that must fail; its standard error.
async fn shop_fails(base: &str, config: &Path, args: &[&str]) -> String {
    let args: Vec<&str> = args.iter().copied().chain(["--project", "shop"]).collect();
    let ran = nexus(base, config, &args, "").await;
    assert!(!ran.ok, "nexus {args:?} succeeded: {}", ran.stdout);
    ran.stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_reaches_functions_members_keys_schedules_sessions_and_agents() {
    let state = tempfile::tempdir().unwrap();
    let (_coordinator, base) = start(&state.path().join("coordinator")).await;
    let config = state.path().join("config");
    let config = config.as_path();
    let base = base.as_str();
    let client = Client::new(base).unwrap();
    client
        .register("dev@example.com", "correct horse", None)
        .await
        .unwrap();
    let reader = client
        .register("reader@example.com", "battery staple", Some("Reader"))
        .await
        .unwrap();

    let login = ["login", "--email", "dev@example.com", "--password-stdin"];
    let ran = nexus(base, config, &login, "correct horse\n").await;
    assert!(ran.ok, "{}", ran.stderr);
    let ran = nexus(base, config, &["projects", "create", "shop"], "").await;
    assert!(ran.ok, "{}", ran.stderr);

    let tokens = client
        .login("dev@example.com", "correct horse")
        .await
        .unwrap();
    let owner = client.clone().with_token(&tokens.access_token);
    // The counter app: a bare component would get no key-value store to count in.
    let counter = || Upload::Tar(app_tar(COUNTER_APP, &[("counter.wasm", "counter")]).into());
    owner
        .deploy("shop", "counter", counter(), DeployAlias::Live)
        .await
        .unwrap();

    // Functions.
    let functions = shop_json(base, config, &["functions"]).await;
    assert_eq!(functions[0]["name"], "counter", "{functions}");
    assert_eq!(functions[0]["aliases"][0]["name"], "live", "{functions}");
    assert_eq!(functions[0]["aliases"][0]["version"], 1, "{functions}");
    let table = shop(base, config, &["functions"]).await;
    assert!(
        table
            .lines()
            .any(|line| line.starts_with("counter") && line.contains("edge")),
        "{table}"
    );

    let stderr = shop_fails(base, config, &["functions", "set", "counter"]).await;
    assert!(stderr.contains("nothing to change"), "{stderr}");
    shop(
        base,
        config,
        &["functions", "set", "counter", "--priority", "high"],
    )
    .await;
    let before = shop_json(base, config, &["functions", "get", "counter"]).await;
    assert_eq!(before["priority"], "high", "{before}");
    assert_eq!(before["versions"].as_array().unwrap().len(), 1, "{before}");
    // Retries are sent whole: the settings not given keep their values.
    let after = shop_json(
        base,
        config,
        &["functions", "set", "counter", "--async-attempts", "5"],
    )
    .await;
    assert_eq!(after["async_retry"]["max_attempts"], 5, "{after}");
    assert_eq!(
        after["async_retry"]["max_age_ms"], before["async_retry"]["max_age_ms"],
        "{after}"
    );
    assert_eq!(after["priority"], "high", "{after}");

    owner
        .deploy("shop", "counter", counter(), DeployAlias::Nothing)
        .await
        .unwrap();
    let version = shop_json(base, config, &["functions", "version", "counter", "2"]).await;
    assert_eq!(version["version"], 2, "{version}");
    assert!(version["app"].is_object(), "{version}");
    let alias = shop_json(
        base,
        config,
        &[
            "functions",
            "alias",
            "counter",
            "live",
            "2",
            "--canary",
            "1",
            "--weight",
            "10",
        ],
    )
    .await;
    assert_eq!(alias["name"], "live", "{alias}");
    assert_eq!(alias["version"], 2, "{alias}");
    assert_eq!(
        alias["canary"],
        serde_json::json!({"version": 1, "weight": 10}),
        "{alias}"
    );
    assert_eq!(alias["previous"]["version"], 1, "{alias}");
    let shown = shop(base, config, &["functions", "get", "counter"]).await;
    assert!(shown.contains("1 at 10%"), "{shown}");
    let rolled = shop_json(base, config, &["functions", "rollback", "counter", "live"]).await;
    assert_eq!(rolled["version"], 1, "{rolled}");
    assert!(rolled["canary"].is_null(), "{rolled}");

    // A judged rollout: started, listed, cancelled; and a warm pool.
    let started = shop_json(
        base,
        config,
        &[
            "functions",
            "rollout",
            "counter",
            "2",
            "--steps",
            "50,100",
            "--step",
            "60m",
        ],
    )
    .await;
    assert_eq!(
        (&started["status"], &started["weight"]),
        (&"running".into(), &50.into()),
        "{started}"
    );
    let listed = shop_json(base, config, &["functions", "rollouts", "counter"]).await;
    assert_eq!(listed[0]["id"], started["id"], "{listed}");
    let id = started["id"].as_str().unwrap();
    let cancelled = shop_json(
        base,
        config,
        &["functions", "cancel-rollout", "counter", id],
    )
    .await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    let warm = shop_json(
        base,
        config,
        &["functions", "set", "counter", "--min-warm", "1"],
    )
    .await;
    assert_eq!(warm["min_warm"], 1, "{warm}");

    // Members.
    let added = shop_json(
        base,
        config,
        &["members", "add", "reader@example.com", "viewer"],
    )
    .await;
    assert_eq!(added["user_id"], reader.user_id.as_str(), "{added}");
    let members = shop_json(base, config, &["members"]).await;
    let role_of = |members: &Value, email: &str| {
        members
            .as_array()
            .unwrap()
            .iter()
            .find(|member| member["email"] == email)
            .map(|member| member["role"].clone())
    };
    assert_eq!(members.as_array().unwrap().len(), 2, "{members}");
    assert_eq!(
        role_of(&members, "reader@example.com"),
        Some(Value::from("viewer"))
    );
    assert_eq!(
        role_of(&members, "dev@example.com"),
        Some(Value::from("owner"))
    );
    shop(
        base,
        config,
        &["members", "set", "reader@example.com", "developer"],
    )
    .await;
    let members = shop_json(base, config, &["members"]).await;
    assert_eq!(
        role_of(&members, "reader@example.com"),
        Some(Value::from("developer")),
        "{members}"
    );
    shop(base, config, &["members", "remove", &reader.user_id]).await;
    let members = shop_json(base, config, &["members"]).await;
    assert_eq!(role_of(&members, "reader@example.com"), None, "{members}");

    // API keys.
    let ran = nexus(
        base,
        config,
        &["keys", "create", "ci", "developer", "--project", "shop"],
        "",
    )
    .await;
    assert!(ran.ok, "{}", ran.stderr);
    let secret = ran.stdout.trim().to_owned();
    assert!(secret.starts_with("nxk_"), "{}", ran.stdout);
    assert!(ran.stderr.contains("shown only now"), "{}", ran.stderr);
    let keys = shop_json(base, config, &["keys"]).await;
    assert_eq!(keys[0]["name"], "ci", "{keys}");
    assert_eq!(keys[0]["role"], "developer", "{keys}");
    assert_eq!(keys[0]["revoked"], false, "{keys}");
    assert!(keys[0].get("secret").is_none(), "{keys}");
    let key_id = keys[0]["id"].as_str().unwrap().to_owned();
    // The key works as `--token` (on the routes that take API keys), until it is revoked.
    let with_key = ["schedules", "--token", &secret];
    let listed = shop_json(base, config, &with_key).await;
    assert_eq!(listed, serde_json::json!([]));
    shop(base, config, &["keys", "revoke", &key_id]).await;
    let keys = shop_json(base, config, &["keys"]).await;
    assert_eq!(keys[0]["revoked"], true, "{keys}");
    let stderr = shop_fails(base, config, &with_key).await;
    assert!(stderr.contains("401"), "{stderr}");

    // Schedules.
    let created = shop_json(
        base,
        config,
        &[
            "schedules",
            "create",
            "tick",
            "--function",
            "counter",
            "--cron",
            "0 0 * * * *",
        ],
    )
    .await;
    assert_eq!(created["name"], "tick", "{created}");
    assert_eq!(created["alias"], "live", "{created}");
    assert!(created["next_fire_at"].is_string(), "{created}");
    let schedule_id = created["id"].as_str().unwrap().to_owned();
    let stderr = shop_fails(
        base,
        config,
        &["schedules", "create", "tock", "--function", "counter"],
    )
    .await;
    assert!(stderr.contains("--cron"), "{stderr}");
    let schedules = shop_json(base, config, &["schedules"]).await;
    assert_eq!(schedules[0]["cron"], "0 0 * * * *", "{schedules}");
    let by_id = shop_json(base, config, &["schedules", "get", &schedule_id]).await;
    assert_eq!(by_id["name"], "tick", "{by_id}");
    let by_name = shop_json(base, config, &["schedules", "get", "tick"]).await;
    assert_eq!(by_name["id"], schedule_id.as_str(), "{by_name}");
    shop(base, config, &["schedules", "delete", &schedule_id]).await;
    let schedules = shop_json(base, config, &["schedules"]).await;
    assert_eq!(schedules, serde_json::json!([]));

    // Sessions: this login's, and the test's own, which the command line revokes.
    let sessions = nexus(base, config, &["sessions", "--json"], "").await;
    assert!(sessions.ok, "{}", sessions.stderr);
    let sessions: Value = serde_json::from_str(&sessions.stdout).unwrap();
    let sessions = sessions.as_array().unwrap();
    assert!(sessions.len() >= 2, "{sessions:?}");
    assert_eq!(
        sessions
            .iter()
            .filter(|session| session["current"] == true)
            .count(),
        1,
        "{sessions:?}"
    );
    let revoke = ["sessions", "revoke", &tokens.session_id];
    let ran = nexus(base, config, &revoke, "").await;
    assert!(ran.ok, "{}", ran.stderr);
    let sessions = nexus(base, config, &["sessions", "--json"], "").await;
    assert!(
        !sessions.stdout.contains(&tokens.session_id),
        "{}",
        sessions.stdout
    );
    assert!(owner.list_projects().await.is_err());

    // Agents: messages, and their context.
    let agent = shop_json(
        base,
        config,
        &["agents", "create", "bot", "--function", "counter"],
    )
    .await;
    let agent = agent["id"].as_str().unwrap().to_owned();
    let agent = agent.as_str();
    assert_eq!(shop(base, config, &["send", agent]).await, "1");
    assert_eq!(shop(base, config, &["send", agent]).await, "2");
    assert_eq!(
        shop(base, config, &["context", agent, "get", "count"]).await,
        "2"
    );
    let keys = shop_json(base, config, &["context", agent]).await;
    assert_eq!(keys, serde_json::json!({"keys": ["count"]}));
    let count = shop_json(base, config, &["context", agent, "get", "count"]).await;
    assert_eq!(count["value"], "2", "{count}");
    let etag = count["etag"].as_str().unwrap().to_owned();
    shop(
        base,
        config,
        &["context", agent, "put", "count", "41", "--if-match", &etag],
    )
    .await;
    let stderr = shop_fails(
        base,
        config,
        &["context", agent, "put", "count", "0", "--if-match", &etag],
    )
    .await;
    assert!(
        stderr.contains("412") || stderr.contains("precondition"),
        "{stderr}"
    );
    assert_eq!(shop(base, config, &["send", agent]).await, "42");

    let put = ["context", agent, "put", "note", "hello", "--if-absent"];
    shop(base, config, &put).await;
    shop_fails(base, config, &put).await;
    let note = shop(base, config, &["context", agent, "get", "note"]).await;
    assert_eq!(note, "hello");
    let ttl = [
        "context", agent, "put", "brief", "soon", "--ttl", "600", "--store", "scratch",
    ];
    shop(base, config, &ttl).await;
    let brief = shop_json(
        base,
        config,
        &["context", agent, "get", "brief", "--store", "scratch"],
    )
    .await;
    assert!(brief["expires_in_ms"].as_u64().unwrap() > 0, "{brief}");
    let deleted = shop_json(base, config, &["context", agent, "delete", "note"]).await;
    assert_eq!(deleted["deleted"], true, "{deleted}");
    let stderr = shop_fails(base, config, &["context", agent, "get", "note"]).await;
    assert!(stderr.contains("note has no value"), "{stderr}");

    let queued = shop_json(base, config, &["send", agent, "--async", "-d", "hi"]).await;
    let invocation = queued["id"].as_str().unwrap();
    assert!(!invocation.is_empty(), "{queued}");
}
