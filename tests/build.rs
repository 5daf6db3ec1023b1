//! Builds the guest functions in `functions/` (their own workspace, target wasm32-wasip2) and
//! tells the tests where they are, like Spin's `tests/test-components/build.rs`.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let functions = manifest_dir.join("..").join("functions");
    let functions = functions.canonicalize().unwrap_or(functions);

    for watched in ["Cargo.toml", "Cargo.lock", "spin.toml"] {
        println!(
            "cargo:rerun-if-changed={}",
            functions.join(watched).display()
        );
    }
    if let Ok(entries) = std::fs::read_dir(&functions) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.join("Cargo.toml").is_file() {
                println!(
                    "cargo:rerun-if-changed={}",
                    path.join("Cargo.toml").display()
                );
                println!("cargo:rerun-if-changed={}", path.join("src").display());
            }
        }
    }

    // Every function as a component, and `hello` also as a core module (see spin.toml).
    build_functions(&functions, &["--target", "wasm32-wasip2"]);
    build_functions(
        &functions,
        &[
            "--target",
            "wasm32-wasip1",
            "-p",
            "hello",
            "-p",
            "hello-sdk2",
        ],
    );
    println!(
        "cargo:rustc-env=NEXUS_FUNCTIONS_DIR={}",
        functions.display()
    );
}

fn build_functions(functions: &std::path::Path, selection: &[&str]) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(functions)
        .args(["build", "--release", "--locked"])
        .args(selection)
        // The guests have their own workspace and target directory; nothing of the outer build
        // (target dir, flags, profile) may leak into theirs.
        .env("CARGO_TARGET_DIR", functions.join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_PROFILE_RELEASE_DEBUG")
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!("building the guest functions failed ({status})")),
        Err(error) => fail(&format!(
            "could not run cargo for the guest functions: {error}"
        )),
    }
}

fn fail(message: &str) -> ! {
    eprintln!(
        "{message}; are the wasm targets installed? (`rustup target add wasm32-wasip2 wasm32-wasip1`)"
    );
    std::process::exit(1);
}
