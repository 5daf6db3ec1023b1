//! `SecretStore` against a local server speaking Vault's KV v2 and AppRole APIs.
#![expect(
    clippy::unwrap_used,
    reason = "helpers shared by tests report failures by panicking"
)]

use std::sync::Arc;
use std::time::Duration;

use nexus_secrets::testing::FakeVault;
use nexus_secrets::{
    ManualClock, Secret, SecretError, SecretStore, VaultAuth, VaultConfig, VaultError,
};

const ROOT: &str = "s.root";
const TTL: Duration = Duration::from_secs(60);

fn token_config(vault: &FakeVault) -> VaultConfig {
    let mut config = VaultConfig::new(&vault.url(), VaultAuth::Token(Secret::new(ROOT.to_owned())));
    config.cache_ttl = TTL;
    config
}

fn store(config: VaultConfig) -> (SecretStore, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::default());
    let store = SecretStore::with_clock(config, Arc::clone(&clock) as _).unwrap();
    (store, clock)
}

#[tokio::test]
async fn token_auth_reads_under_prefix_and_namespace() {
    let vault = FakeVault::start(ROOT).await.unwrap();
    vault.put("kv", "nexus/prod/apps/shop/api_key", "k-123");
    let mut config = token_config(&vault);
    config.mount = "kv".to_owned();
    config.prefix = "nexus/prod".to_owned();
    config.namespace = Some("team-a".to_owned());
    let (store, _clock) = store(config);
    let secret = store.read("apps/shop/api_key").await.unwrap();
    assert_eq!(secret.expose(), "k-123");
    assert_eq!(vault.namespaces(), ["team-a"]);
}

#[tokio::test]
async fn a_fresh_entry_costs_no_request_and_an_expired_one_reads_the_rotated_value() {
    let vault = FakeVault::start(ROOT).await.unwrap();
    vault.put("secret", "db/password", "v1");
    let (store, clock) = store(token_config(&vault));
    assert_eq!(store.read("db/password").await.unwrap().expose(), "v1");
    vault.put("secret", "db/password", "v2");
    clock.advance(TTL - Duration::from_secs(1));
    assert_eq!(store.read("db/password").await.unwrap().expose(), "v1");
    assert_eq!(vault.reads(), 1, "a cache hit asks Vault nothing");
    clock.advance(Duration::from_secs(1));
    assert_eq!(store.read("db/password").await.unwrap().expose(), "v2");
    assert_eq!(vault.reads(), 2);
}

#[tokio::test]
async fn concurrent_misses_make_one_request() {
    let vault = FakeVault::start(ROOT).await.unwrap();
    vault.put("secret", "shared", "s");
    let (store, _clock) = store(token_config(&vault));
    vault.hold();
    // join_all polls every read before the first request can be answered: all eight miss.
    let reads = futures::future::join_all((0..8).map(|_| store.read("shared")));
    let release = async {
        vault.wait_for_reads(1).await;
        vault.release();
    };
    let (reads, ()) = tokio::join!(reads, release);
    for read in reads {
        assert_eq!(read.unwrap().expose(), "s");
    }
    assert_eq!(vault.reads(), 1);
}

#[tokio::test]
async fn approle_logs_in_and_again_when_the_lease_ends_or_on_a_403() {
    let vault = FakeVault::start(ROOT).await.unwrap();
    vault.enable_approle("role-1", "secret-1", 100);
    vault.put("secret", "a", "1");
    vault.put("secret", "b", "2");
    vault.put("secret", "c", "3");
    let config = VaultConfig::new(
        &vault.url(),
        VaultAuth::AppRole {
            role_id: "role-1".to_owned(),
            secret_id: Secret::new("secret-1".to_owned()),
        },
    );
    let (store, clock) = store(config);
    assert_eq!(store.read("a").await.unwrap().expose(), "1");
    assert_eq!(vault.logins(), 1);
    // Past three quarters of the lease the token is replaced before it is refused.
    clock.advance(Duration::from_secs(76));
    assert_eq!(store.read("b").await.unwrap().expose(), "2");
    assert_eq!(vault.logins(), 2);
    vault.revoke_tokens();
    assert_eq!(store.read("c").await.unwrap().expose(), "3");
    assert_eq!(vault.logins(), 3, "a 403 logs in again once");
}

#[tokio::test]
async fn bad_approle_credentials_fail_with_the_login_error() {
    let vault = FakeVault::start(ROOT).await.unwrap();
    vault.enable_approle("role-1", "secret-1", 100);
    let config = VaultConfig::new(
        &vault.url(),
        VaultAuth::AppRole {
            role_id: "role-1".to_owned(),
            secret_id: Secret::new("wrong".to_owned()),
        },
    );
    let (store, _clock) = store(config);
    let error = store.read("a").await.unwrap_err();
    assert!(
        matches!(
            &error,
            SecretError::Unavailable {
                cause: VaultError::Login(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("invalid role or secret ID"),
        "{error}"
    );
    assert!(!format!("{error} {error:?}").contains("wrong"));
}

#[tokio::test]
async fn a_missing_path_is_not_found() {
    let vault = FakeVault::start(ROOT).await.unwrap();
    let (store, _clock) = store(token_config(&vault));
    let error = store.read("apps/shop/nope").await.unwrap_err();
    assert!(matches!(error, SecretError::NotFound { ref name, .. } if name == "apps/shop/nope"));
    assert!(error.to_string().contains("not found"), "{error}");
}

#[tokio::test]
async fn vault_down_after_expiry_fails_closed_naming_the_secret_without_its_value() {
    let mut vault = FakeVault::start(ROOT).await.unwrap();
    vault.put("secret", "apps/shop/api_key", "hunter2");
    let (store, clock) = store(token_config(&vault));
    assert_eq!(
        store.read("apps/shop/api_key").await.unwrap().expose(),
        "hunter2"
    );
    vault.stop().await;
    // Still fresh: served from the cache although Vault is down.
    assert_eq!(
        store.read("apps/shop/api_key").await.unwrap().expose(),
        "hunter2"
    );
    clock.advance(TTL);
    let error = store.read("apps/shop/api_key").await.unwrap_err();
    assert!(
        matches!(&error, SecretError::Unavailable { name, cause: VaultError::Unreachable { .. } } if name == "apps/shop/api_key"),
        "{error:?}"
    );
    let shown = format!("{error} {error:?} {store:?}");
    assert!(shown.contains("apps/shop/api_key"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
    // And it stays closed: the failure left no value behind.
    assert!(store.read("apps/shop/api_key").await.is_err());
}

#[tokio::test]
async fn a_denied_token_is_a_typed_error() {
    let vault = FakeVault::start(ROOT).await.unwrap();
    vault.put("secret", "x", "y");
    let mut config = token_config(&vault);
    config.auth = VaultAuth::Token(Secret::new("s.other".to_owned()));
    let (store, _clock) = store(config);
    let error = store.read("x").await.unwrap_err();
    assert!(
        matches!(
            &error,
            SecretError::Unavailable {
                cause: VaultError::Denied(_),
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.to_string().contains("s.other"));
}

#[tokio::test]
async fn every_call_has_a_time_limit_and_a_size_limit() {
    let vault = FakeVault::start(ROOT).await.unwrap();
    vault.put(
        "secret",
        "big",
        &"x".repeat(nexus_secrets::MAX_RESPONSE_BYTES),
    );
    let (store_, _clock) = store(token_config(&vault));
    let error = store_.read("big").await.unwrap_err();
    assert!(
        matches!(
            &error,
            SecretError::Unavailable {
                cause: VaultError::TooLarge,
                ..
            }
        ),
        "{error:?}"
    );
    let mut config = token_config(&vault);
    config.timeout = Duration::from_millis(200);
    let (slow, _clock) = store(config);
    vault.hold();
    let error = slow.read("big").await.unwrap_err();
    assert!(
        matches!(
            &error,
            SecretError::Unavailable {
                cause: VaultError::Timeout(_),
                ..
            }
        ),
        "{error:?}"
    );
}
