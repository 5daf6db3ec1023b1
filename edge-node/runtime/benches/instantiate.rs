//! Instantiate latency: a fresh store and instance of a pre-instantiated component from the
//! pooling allocator, the work done for every request. Prints p50/p99 against the target.
//!
//! `NEXUS_BENCH_COMPONENT` names the component (default: the example `hello`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use nexus_context::MemoryStore;
use nexus_proto::app::{HttpRoute, HttpTrigger, ResolvedComponent};
use nexus_proto::{Digest, ResolvedApp};
use nexus_runtime::{AppVariables, EnvVariables, Runtime, RuntimeConfig};

const WARMUP: usize = 2_000;
const SAMPLES: usize = 50_000;
const TARGET_P50: Duration = Duration::from_micros(20);

fn main() -> anyhow::Result<()> {
    let path = std::env::var_os("NEXUS_BENCH_COMPONENT").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../functions/target/wasm32-wasip2/release/hello.wasm")
        },
        PathBuf::from,
    );
    let bytes =
        std::fs::read(&path).with_context(|| format!("failed to read {}", path.display()))?;
    let digest = Digest::of(&bytes);
    let app = ResolvedApp {
        name: "bench".into(),
        version: None,
        variables: BTreeMap::new(),
        components: BTreeMap::from([(
            "hello".to_owned(),
            ResolvedComponent {
                id: "hello".into(),
                source: digest,
                allowed_outbound_hosts: Vec::new(),
                key_value_stores: vec!["default".into()],
                sqlite_databases: Vec::new(),
                variables: BTreeMap::new(),
                environment: BTreeMap::new(),
            },
        )]),
        http_triggers: vec![HttpTrigger {
            route: HttpRoute::Path("/hello".into()),
            component: "hello".into(),
        }],
    };
    let artifacts = BTreeMap::from([(digest, path.clone())]);

    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio.block_on(async {
        let runtime = Runtime::new(RuntimeConfig::default(), Arc::new(MemoryStore::new()))?;
        let variables = AppVariables::read(&app, Arc::new(EnvVariables::default())).await?;
        let loaded = runtime.load_app(&app, &artifacts, &variables)?;
        let handler = loaded.component("hello").context("component missing")?;
        for _ in 0..WARMUP {
            handler.instantiate_only().await?;
        }
        let mut samples = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            samples.push(handler.instantiate_only().await?);
        }
        samples.sort_unstable();
        let percentile = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
        let (p50, p99) = (percentile(50), percentile(99));
        let verdict = if p50 < TARGET_P50 { "meets" } else { "MISSES" };
        println!(
            "instantiate {} ({} samples, pooling + copy-on-write): p50 {:.1} µs, p99 {:.1} µs — {verdict} the p50 < {} µs target",
            path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default(),
            SAMPLES,
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
            TARGET_P50.as_micros(),
        );
        anyhow::Ok(())
    })
}
