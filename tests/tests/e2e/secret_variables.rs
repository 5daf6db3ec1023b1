//! Variables marked `secret = true` read from Vault (a local fake speaking the KV v2 API):
//! at load, again at each invocation once the cache has expired, and failing closed, with
//! the one error body, when Vault is down.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use nexus_secrets::testing::FakeVault;
use nexus_secrets::{ManualClock, Secret, SecretStore, VaultAuth, VaultConfig};
use nexus_tests::TestPlatform;

const TTL: Duration = Duration::from_secs(300);
/// `functions/spin.toml`'s app and its secret variable, as `nexus serve` names them in Vault.
const SECRET_PATH: &str = "apps/nexus-examples/secret_token";

fn store(vault: &FakeVault) -> (Arc<SecretStore>, Arc<ManualClock>) {
    let mut config = VaultConfig::new(&vault.url(), VaultAuth::Token(Secret::new("s.root".into())));
    config.cache_ttl = TTL;
    let clock = Arc::new(ManualClock::default());
    let store = SecretStore::with_clock(config, Arc::clone(&clock) as _).unwrap();
    (Arc::new(store), clock)
}

async fn token(platform: &TestPlatform, prefix: &str) -> (StatusCode, String) {
    let response = platform
        .get(&format!("{prefix}/variables?name=token"))
        .await;
    (response.status, response.text())
}

#[tokio::test]
async fn a_guest_reads_its_secret_from_vault_until_vault_is_down() {
    let mut vault = FakeVault::start("s.root").await.unwrap();
    vault.put("secret", SECRET_PATH, "from-vault-1");
    let (store, clock) = store(&vault);
    let platform = TestPlatform::builder().vault(store).start().await;
    for prefix in ["", "/p3"] {
        assert_eq!(
            token(&platform, prefix).await,
            (StatusCode::OK, "from-vault-1".to_owned()),
            "{prefix}"
        );
    }
    assert_eq!(vault.reads(), 1, "read at load, then from the cache");

    vault.put("secret", SECRET_PATH, "from-vault-2");
    assert_eq!(
        token(&platform, "").await.1,
        "from-vault-1",
        "cached within the TTL"
    );
    clock.advance(TTL);
    for prefix in ["", "/p3"] {
        assert_eq!(
            token(&platform, prefix).await,
            (StatusCode::OK, "from-vault-2".to_owned()),
            "{prefix}: rotated without a redeploy"
        );
    }
    assert_eq!(vault.reads(), 2);

    vault.stop().await;
    clock.advance(TTL);
    for prefix in ["", "/p3"] {
        let response = platform
            .get(&format!("{prefix}/variables?name=greeting"))
            .await;
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE, "{prefix}");
        let body = response.json();
        assert_eq!(body["error"]["code"], "secret_unavailable", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("`secret_token`"), "{message}");
        assert!(!response.text().contains("from-vault"), "{body}");
    }
    // Components without secrets are not affected.
    assert_eq!(platform.get("/hello").await.status, StatusCode::OK);
}

#[tokio::test]
async fn the_app_does_not_load_while_vault_is_down() {
    let mut vault = FakeVault::start("s.root").await.unwrap();
    let (store, _clock) = store(&vault);
    vault.stop().await;
    let error = TestPlatform::builder()
        .vault(store)
        .try_start()
        .await
        .err()
        .expect("the load must fail");
    let message = format!("{error:#}");
    assert!(
        message.contains("secret variable `secret_token` could not be read"),
        "{message}"
    );
}

#[tokio::test]
async fn a_secret_vault_does_not_have_takes_its_default() {
    let vault = FakeVault::start("s.root").await.unwrap();
    let (store, _clock) = store(&vault);
    let platform = TestPlatform::builder().vault(store).start().await;
    assert_eq!(
        token(&platform, "").await,
        (StatusCode::OK, "s3cret".to_owned())
    );
}
