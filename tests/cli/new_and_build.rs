//! `nexus new` then `nexus build`, the real binary: a fresh http-rust app builds into a
//! WebAssembly component where its manifest says it is.
#![expect(clippy::unwrap_used, reason = "a test reports failures by panicking")]

use std::path::Path;
use std::process::Output;

use tokio::process::Command;

/// A component's preamble: the `\0asm` magic, then version 0x0d and layer 1 (a core module
/// has version 1, layer 0).
const COMPONENT_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];

async fn nexus(dir: &Path, args: &[&str]) -> Output {
    // Kept between runs with the tests' other build output, so that spin-sdk and its
    // dependencies are compiled for the scaffolded app once.
    let app_target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scaffolded-app-target");
    let output = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", app_target)
        // Nothing of an outer build may leak into the app's build, nor pick another manifest.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("NEXUS_MANIFEST")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "nexus {args:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    output
}

#[tokio::test]
async fn a_new_http_rust_app_builds_into_a_component() {
    let temp = tempfile::tempdir().unwrap();
    let created = nexus(temp.path(), &["new", "hi-there"]).await;
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(stdout.contains("nexus build"), "{stdout}");
    let app = temp.path().join("hi-there");
    assert!(app.join("spin.toml").is_file());

    // Left by an earlier run, it would hide a build that writes nothing.
    let wasm = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scaffolded-app-target/wasm32-wasip2/release/hi_there.wasm");
    match std::fs::remove_file(&wasm) {
        Ok(()) => {}
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::NotFound, "{error}"),
    }

    let built = nexus(&app, &["build"]).await;
    let stdout = String::from_utf8_lossy(&built.stdout);
    assert!(stdout.contains("Building component `hi-there`"), "{stdout}");

    let bytes = std::fs::read(&wasm).unwrap();
    assert!(
        bytes.starts_with(&COMPONENT_PREAMBLE),
        "{} does not start with a component preamble: {:02x?}",
        wasm.display(),
        &bytes[..bytes.len().min(8)]
    );

    // A second `nexus new` into the same place is refused and names the way out.
    let again = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(["new", "hi-there"])
        .current_dir(temp.path())
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("already exists and is not empty"),
        "{stderr}"
    );
    assert!(stderr.contains("hint:"), "{stderr}");
}
