//! `spin.toml` text through `nexus_manifest::load_confined`, the loader the coordinator runs on
//! every deploy upload, in a directory holding two component files the text may name
//! (`app.wasm`, `sub/other.wasm`).
//!
//! Beyond not panicking: what loads names only files inside the directory, with the digests of
//! their bytes; every trigger's component exists and its route parses as the edge router will
//! parse it; the record survives the JSON round trip that takes it to the database and nodes.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nexus_proto::app::HttpRoute;
use nexus_proto::{Digest, ResolvedApp, route};

/// The app directory, kept for the process's life (`scripts/fuzz.sh` gives each run a
/// `TMPDIR` of its own and removes it).
fn app_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let root = dir.canonicalize().expect("the directory's path");
        std::fs::create_dir_all(root.join("sub")).expect("sub/");
        std::fs::write(root.join("app.wasm"), b"\0asm app").expect("app.wasm");
        std::fs::write(root.join("sub/other.wasm"), b"\0asm other").expect("other.wasm");
        root
    })
}

fuzz_target!(|data: &[u8]| {
    let root = app_dir();
    let manifest = root.join("spin.toml");
    std::fs::write(&manifest, data).expect("the manifest is written");
    let Ok(loaded) = nexus_manifest::load_confined(&manifest) else {
        return;
    };
    for component in loaded.app.components.values() {
        let path = &loaded.artifacts[&component.source];
        assert!(
            path.starts_with(root),
            "{} is outside the app",
            path.display()
        );
        let bytes = std::fs::read(path).expect("an artifact is a readable file");
        assert_eq!(Digest::of(&bytes), component.source);
    }
    for trigger in &loaded.app.http_triggers {
        assert!(loaded.app.components.contains_key(&trigger.component));
        if let HttpRoute::Path(pattern) = &trigger.route {
            assert!(
                route::parse(&route::based_route(pattern)).is_ok(),
                "{pattern:?}"
            );
        }
    }
    let json = serde_json::to_vec(&loaded.app).expect("the record serializes");
    let back: ResolvedApp = serde_json::from_slice(&json).expect("nodes read the record");
    assert_eq!(back, loaded.app);
});
