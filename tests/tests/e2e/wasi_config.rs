//! `wasi:config` (the 2024-09-27 runtime-config draft Spin exposes) through the
//! `wasi-config-probe` and `wasi-probe-p3` guests: the component's variables, as Spin answers.

use http::StatusCode;
use nexus_tests::TestPlatform;

async fn config(platform: &TestPlatform, path: &str) -> String {
    let response = platform.get(path).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{path}: {}",
        response.text()
    );
    response.text()
}

#[tokio::test]
async fn get_answers_the_component_variables() {
    let platform = TestPlatform::builder().start().await;
    for (key, expected) in [
        ("greeting", r#"Some("Hello from variables")"#),
        ("shout", r#"Some("Hello from variables!")"#),
        ("token", r#"Some("s3cret")"#),
    ] {
        assert_eq!(
            config(&platform, &format!("/wasi-config-probe?key={key}")).await,
            expected,
            "{key}"
        );
    }
    assert_eq!(
        config(&platform, "/p3/wasi-probe?op=config&key=greeting").await,
        r#"Some("Hello from variables")"#
    );

    let overridden = TestPlatform::builder()
        .env("SPIN_VARIABLE_GREETING", "Hello from the environment")
        .start()
        .await;
    assert_eq!(
        config(&overridden, "/wasi-config-probe?key=shout").await,
        r#"Some("Hello from the environment!")"#
    );
}

#[tokio::test]
async fn unknown_and_invalid_keys_are_none() {
    let platform = TestPlatform::builder().start().await;
    // Spin answers `none` for both, not an error.
    for key in [
        "nope",
        "Greeting",
        "bad-key",
        "_greeting",
        "greeting_",
        "a__b",
        "",
    ] {
        assert_eq!(
            config(&platform, &format!("/wasi-config-probe?key={key}")).await,
            "None",
            "{key:?}"
        );
    }
    // An app variable the component does not declare is not visible.
    assert_eq!(
        config(&platform, "/wasi-config-probe?key=secret_token").await,
        "None"
    );
    assert_eq!(
        config(&platform, "/p3/wasi-probe?op=config&key=token").await,
        "None"
    );
}

#[tokio::test]
async fn get_all_answers_every_component_variable() {
    let platform = TestPlatform::builder().start().await;
    assert_eq!(
        config(&platform, "/wasi-config-probe").await,
        "greeting=Hello from variables\nshout=Hello from variables!\ntoken=s3cret"
    );
}
