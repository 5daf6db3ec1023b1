//! One test per loading rule, on small manifests written to a temporary directory, plus a
//! realistic Spin app.

use std::error::Error as _;
use std::path::Path;

use nexus_proto::Digest;
use nexus_proto::app::{HttpRoute, Template, TemplatePart};
use tempfile::TempDir;

use super::{load, load_confined};
use crate::{Error, LoadedApp};

/// Writes `manifest` as `spin.toml` and each of `files` (with its own name as content).
fn write_app(manifest: &str, files: &[&str]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spin.toml"), manifest).unwrap();
    for file in files {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, file.as_bytes()).unwrap();
    }
    dir
}

fn try_load(manifest: &str, files: &[&str]) -> Result<LoadedApp, Error> {
    let dir = write_app(manifest, files);
    load(&dir.path().join("spin.toml"))
}

fn load_ok(manifest: &str, files: &[&str]) -> LoadedApp {
    try_load(manifest, files).unwrap_or_else(|error| panic!("{}", chain(&error)))
}

fn load_err(manifest: &str, files: &[&str]) -> Error {
    try_load(manifest, files).expect_err("manifest should be refused")
}

/// The error and its sources, as a binary would print them.
fn chain(error: &Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A valid manifest header with one `/...` trigger for component `app` (source `app.wasm`),
/// followed by `rest`.
/// `allowed_outbound_hosts` as written in the manifest.
fn hosts(component: &nexus_proto::app::ResolvedComponent) -> Vec<String> {
    component
        .allowed_outbound_hosts
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn app_with(rest: &str) -> String {
    format!(
        r#"spin_manifest_version = 2

[application]
name = "test-app"

[[trigger.http]]
route = "/..."
component = "app"

[component.app]
source = "app.wasm"
{rest}"#
    )
}

fn assert_toml_error_at(error: &Error, line: usize, needle: &str) {
    let text = chain(error);
    assert!(matches!(error, Error::Toml { .. }), "{text}");
    assert!(text.contains(&format!("line {line}")), "{text}");
    assert!(text.contains(needle), "{needle:?} not in {text}");
}

#[test]
fn loads_a_minimal_app() {
    let dir = write_app(&app_with(""), &["app.wasm"]);
    let loaded = load(&dir.path().join("spin.toml")).unwrap();
    assert_eq!(loaded.app.name, "test-app");
    assert_eq!(loaded.app.version, None);
    let digest = Digest::of(b"app.wasm");
    assert_eq!(loaded.app.components["app"].source, digest);
    assert_eq!(loaded.app.http_triggers.len(), 1);
    assert_eq!(loaded.app.http_triggers[0].component, "app");
    assert_eq!(
        loaded.app.http_triggers[0].route,
        HttpRoute::Path("/...".to_owned())
    );
    let artifact = &loaded.artifacts[&digest];
    assert!(artifact.is_absolute());
    assert_eq!(
        std::fs::canonicalize(artifact).unwrap(),
        std::fs::canonicalize(dir.path().join("app.wasm")).unwrap()
    );
}

#[test]
fn only_manifest_version_2_is_supported() {
    let body = "[application]\nname = \"x\"\n";
    for (header, expected) in [
        ("spin_manifest_version = \"1\"\n", "version 1"),
        ("spin_version = \"1\"\n", "version 1"),
        ("spin_manifest_version = 3\n", "spin_manifest_version = 3"),
        ("", "no `spin_manifest_version`"),
    ] {
        let error = load_err(&format!("{header}{body}"), &[]);
        let text = chain(&error);
        assert!(
            matches!(error, Error::UnsupportedManifestVersion { .. }),
            "{text}"
        );
        assert!(text.contains(expected), "{text}");
        assert!(
            text.contains("only `spin_manifest_version = 2` is supported"),
            "{text}"
        );
    }
}

#[test]
fn application_fields() {
    let manifest = app_with("").replace(
        "name = \"test-app\"",
        "name = \"test-app\"\nversion = \"1.2.3\"\ndescription = \"d\"\nauthors = [\"a\"]\n\n\
         [application.trigger.http]\nbase = \"/\"",
    );
    let loaded = load_ok(&manifest, &["app.wasm"]);
    assert_eq!(loaded.app.version.as_deref(), Some("1.2.3"));

    let no_name = app_with("").replace("name = \"test-app\"", "");
    assert!(chain(&load_err(&no_name, &["app.wasm"])).contains("missing field `name`"));

    let based = app_with("").replace(
        "name = \"test-app\"",
        "name = \"a\"\n[application.trigger.http]\nbase = \"/api\"",
    );
    let error = load_err(&based, &["app.wasm"]);
    assert!(matches!(&error, Error::UnsupportedBase { base, .. } if base == "/api"));

    let unknown = app_with("").replace(
        "name = \"test-app\"",
        "name = \"a\"\n[application.trigger.http]\nbsae = \"/\"",
    );
    assert_toml_error_at(
        &load_err(&unknown, &["app.wasm"]),
        6,
        "unknown field `bsae`",
    );
}

#[test]
fn variables() {
    let manifest = app_with("").replace(
        "[[trigger.http]]",
        "[variables]\nplain = { default = \"x\" }\nneeded = { required = true }\n\
         token = { required = true, secret = true, description = \"d\" }\n\n[[trigger.http]]",
    );
    let variables = load_ok(&manifest, &["app.wasm"]).app.variables;
    assert_eq!(variables["plain"].default.as_deref(), Some("x"));
    assert!(!variables["plain"].required && !variables["plain"].secret);
    assert!(variables["needed"].required && variables["needed"].default.is_none());
    assert!(variables["token"].secret);

    for (definition, problem) in [
        ("{ default = \"x\", required = true }", "not both"),
        ("{ secret = true }", "not neither"),
    ] {
        let bad = app_with("").replace(
            "[[trigger.http]]",
            &format!("[variables]\nbad = {definition}\n[[trigger.http]]"),
        );
        let error = load_err(&bad, &["app.wasm"]);
        assert!(
            matches!(&error, Error::InvalidVariable { variable, problem: p, .. }
                if variable == "bad" && *p == problem),
            "{}",
            chain(&error)
        );
    }

    for bad_name in ["API_KEY", "a__b", "1a", "with-dash"] {
        let bad = app_with("").replace(
            "[[trigger.http]]",
            &format!("[variables]\n{bad_name} = {{ default = \"x\" }}\n[[trigger.http]]"),
        );
        assert_toml_error_at(&load_err(&bad, &["app.wasm"]), 7, "invalid variable name");
    }
    let unknown = app_with("").replace(
        "[[trigger.http]]",
        "[variables]\nv = { default = \"x\", sceret = true }\n[[trigger.http]]",
    );
    assert_toml_error_at(
        &load_err(&unknown, &["app.wasm"]),
        7,
        "unknown field `sceret`",
    );
}

#[test]
fn component_variable_templates() {
    let manifest = app_with(
        "allowed_outbound_hosts = [\"https://{{ api_host }}\"]\n\
         variables = { url = \"https://{{api_host}}/v1?key={{ api_key }}\", fixed = \"abc\" }",
    )
    .replace(
        "[[trigger.http]]",
        "[variables]\napi_host = { default = \"example.com\" }\n\
         api_key = { required = true, secret = true }\n[[trigger.http]]",
    );
    let component = &load_ok(&manifest, &["app.wasm"]).app.components["app"];
    let literal = |text: &str| TemplatePart::Literal(text.to_owned());
    let variable = |name: &str| TemplatePart::Variable(name.to_owned());
    assert_eq!(
        component.variables["url"],
        Template(vec![
            literal("https://"),
            variable("api_host"),
            literal("/v1?key="),
            variable("api_key"),
        ])
    );
    assert_eq!(component.variables["fixed"], Template(vec![literal("abc")]));
    assert_eq!(hosts(component), ["https://{{ api_host }}"]);

    let undefined = app_with("variables = { url = \"{{ nope }}\" }");
    let error = load_err(&undefined, &["app.wasm"]);
    assert!(
        matches!(&error, Error::UndefinedVariable { component, field, variable, .. }
            if component == "app" && field == "variables.url" && variable == "nope"),
        "{}",
        chain(&error)
    );
    let undefined_host = app_with("allowed_outbound_hosts = [\"https://{{ nope }}\"]");
    assert!(matches!(
        load_err(&undefined_host, &["app.wasm"]),
        Error::UndefinedVariable { .. }
    ));
    let unmatched = app_with("variables = { url = \"{{ nope\" }");
    assert!(matches!(
        load_err(&unmatched, &["app.wasm"]),
        Error::InvalidTemplate { .. }
    ));
    let bad_name = app_with("variables = { Url = \"x\" }");
    assert_toml_error_at(
        &load_err(&bad_name, &["app.wasm"]),
        12,
        "invalid variable name",
    );
}

#[test]
fn component_fields() {
    let manifest = app_with(
        "description = \"the app\"\n\
         environment = { RUST_LOG = \"info\" }\n\
         key_value_stores = [\"default\", \"my-store\", \"snake_store\"]\n\
         sqlite_databases = [\"default\", \"orders\"]\n\
         allowed_outbound_hosts = [\"https://example.com\", \"redis://*:6379\"]\n\
         exclude_files = [\"secret/*\"]\n\
         files = []\n\
         [component.app.build]\ncommand = \"cargo build\"\nwatch = [\"src/**/*.rs\"]\n\
         [component.app.tool.lint]\nlevel = \"savage\"\n",
    );
    let component = &load_ok(&manifest, &["app.wasm"]).app.components["app"];
    assert_eq!(component.id, "app");
    assert_eq!(component.environment["RUST_LOG"], "info");
    assert_eq!(
        component.key_value_stores,
        ["default", "my-store", "snake_store"]
    );
    assert_eq!(component.sqlite_databases, ["default", "orders"]);
    assert_eq!(hosts(component), ["https://example.com", "redis://*:6379"]);

    let unknown = app_with("allowed_outbund_hosts = []");
    assert_toml_error_at(
        &load_err(&unknown, &["app.wasm"]),
        12,
        "unknown field `allowed_outbund_hosts`",
    );
    let bad_label = app_with("key_value_stores = [\"b@d\"]");
    assert_toml_error_at(&load_err(&bad_label, &["app.wasm"]), 12, "store label");
    let bad_build = app_with("[component.app.build]\ncomand = \"make\"");
    assert_toml_error_at(
        &load_err(&bad_build, &["app.wasm"]),
        13,
        "unknown field `comand`",
    );
}

#[test]
fn unimplemented_component_fields_are_refused_when_set() {
    for (line, field) in [
        ("files = [\"static/**/*\"]", "files"),
        ("ai_models = [\"llama2-chat\"]", "ai_models"),
        ("dependencies = { \"a:b/c\" = \"1.0.0\" }", "dependencies"),
        (
            "allowed_http_hosts = [\"example.com\"]",
            "allowed_http_hosts",
        ),
    ] {
        let error = load_err(&app_with(line), &["app.wasm"]);
        assert!(
            matches!(&error, Error::UnsupportedField { owner, field: f, .. }
                if owner == "component `app`" && *f == field),
            "{}",
            chain(&error)
        );
        assert!(chain(&error).contains(&format!("sets `{field}`, which is not supported yet")));
    }
    for empty in ["files = []", "ai_models = []", "dependencies = {}"] {
        load_ok(&app_with(empty), &["app.wasm"]);
    }
}

#[test]
fn component_sources() {
    let remote = app_with("").replace(
        "source = \"app.wasm\"",
        "source = { url = \"https://example.com/a.wasm\", digest = \"sha256:abc\" }",
    );
    let error = load_err(&remote, &[]);
    assert!(matches!(&error, Error::UnsupportedSource { component, .. } if component == "app"));
    assert!(chain(&error).contains("remote (`url`) source"));

    let registry = app_with("").replace(
        "source = \"app.wasm\"",
        "source = { registry = \"ttl.sh\", package = \"a:b\", version = \"1.0.0\" }",
    );
    assert!(chain(&load_err(&registry, &[])).contains("registry source"));

    let malformed = app_with("").replace("source = \"app.wasm\"", "source = { url = \"x\" }");
    assert_toml_error_at(&load_err(&malformed, &[]), 11, "invalid component source");

    let missing = app_with("").replace("app.wasm", "target/missing.wasm");
    let error = load_err(&missing, &[]);
    let text = chain(&error);
    assert!(
        matches!(&error, Error::ReadSource { component, path, .. }
            if component == "app" && path.ends_with("target/missing.wasm") && path.is_absolute()),
        "{text}"
    );
    assert!(text.contains("target/missing.wasm"), "{text}");

    // Paths are relative to the manifest's directory, wherever the process runs.
    let nested = app_with("").replace("app.wasm", "target/wasm32-wasip2/release/app.wasm");
    let dir = write_app(&nested, &["target/wasm32-wasip2/release/app.wasm"]);
    let loaded = load(&dir.path().join("spin.toml")).unwrap();
    assert!(loaded.artifacts.values().all(|path| path.exists()));
}

#[test]
fn identical_components_share_one_artifact() {
    let manifest = app_with("[component.copy]\nsource = \"app.wasm\"");
    let loaded = load_ok(&manifest, &["app.wasm"]);
    assert_eq!(
        loaded.app.components["app"].source,
        loaded.app.components["copy"].source
    );
    assert_eq!(loaded.artifacts.len(), 1);
}

#[test]
fn component_ids_follow_spin_rules() {
    let bad = app_with("").replace("[component.app]", "[component.my_app]");
    assert_toml_error_at(&load_err(&bad, &["app.wasm"]), 10, "invalid component id");
    let bad_reference = app_with("").replace("component = \"app\"", "component = \"1-2-3\"");
    assert_toml_error_at(
        &load_err(&bad_reference, &["app.wasm"]),
        8,
        "must start with an ASCII letter",
    );
}

#[test]
fn manifest_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope/spin.toml");
    let error = load(&missing).unwrap_err();
    assert!(matches!(error, Error::ReadManifest { .. }));
    assert!(chain(&error).contains("nope/spin.toml"));

    let broken = load_err("spin_manifest_version = 2\n[application\n", &[]);
    assert!(matches!(broken, Error::Toml { .. }));
    assert!(chain(&broken).contains("spin.toml"));
    assert!(
        chain(&broken)
            .chars()
            .next()
            .is_some_and(|c| !c.is_uppercase())
    );
}

#[test]
fn path_of_manifest_may_be_relative() {
    let dir = write_app(&app_with(""), &["app.wasm"]);
    // `load` must not depend on the process's current directory for sources.
    let relative = Path::new(".").join(dir.path().join("spin.toml"));
    let loaded = load(&relative).unwrap();
    assert!(loaded.artifacts.values().all(|path| path.is_absolute()));
}

/// A manifest naming `source` for its one component, loaded with [`load_confined`] from a
/// directory holding `sub/app.wasm`.
fn load_confined_with(source: &str) -> Result<LoadedApp, Error> {
    let manifest = app_with("").replace("source = \"app.wasm\"", &format!("source = {source:?}"));
    let dir = write_app(&manifest, &["sub/app.wasm"]);
    load_confined(&dir.path().join("spin.toml"))
}

#[test]
fn confined_loading_refuses_sources_outside_the_directory_before_reading_them() {
    // Without the check `/dev/zero` is read until memory runs out, and a missing file's error
    // tells the uploader which files exist on the coordinator.
    for outside in [
        "/dev/zero",
        "/etc/passwd",
        "../app.wasm",
        "sub/../../app.wasm",
        "/no/such",
    ] {
        let error = load_confined_with(outside).expect_err(outside);
        assert!(
            matches!(&error, Error::SourceOutsideApp { component, source_path, .. }
                if component == "app" && source_path == outside),
            "{outside}: {}",
            chain(&error)
        );
    }
    for inside in ["sub/app.wasm", "./sub/app.wasm", "sub/../sub/app.wasm"] {
        let loaded = load_confined_with(inside).unwrap_or_else(|error| panic!("{}", chain(&error)));
        assert_eq!(
            loaded.app.components["app"].source,
            Digest::of(b"sub/app.wasm")
        );
    }
    // `load` trusts its manifest: a path leading out is read like any other.
    let dir = write_app(&app_with("").replace("app.wasm", "../outside.wasm"), &[]);
    let error = load(&dir.path().join("spin.toml")).expect_err("no such file");
    assert!(
        matches!(error, Error::ReadSource { .. }),
        "{}",
        chain(&error)
    );
}

mod realistic;
mod triggers;
