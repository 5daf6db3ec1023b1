//! `[[trigger.http]]` rules: routes, inline components, executors, unsupported triggers.

use nexus_proto::app::HttpRoute;

use super::{app_with, assert_toml_error_at, chain, load_err, load_ok};
use crate::Error;

fn trigger(route: &str, component: &str) -> String {
    format!("[[trigger.http]]\nroute = {route}\ncomponent = {component}\n")
}

fn routes_of(manifest: &str, files: &[&str]) -> Vec<(HttpRoute, String)> {
    load_ok(manifest, files)
        .app
        .http_triggers
        .into_iter()
        .map(|trigger| (trigger.route, trigger.component))
        .collect()
}

#[test]
fn private_routes() {
    let manifest = app_with(&trigger("{ private = true }", "\"app\""));
    let routes = routes_of(&manifest, &["app.wasm"]);
    assert_eq!(routes[1], (HttpRoute::Private, "app".to_owned()));

    let public = app_with(&trigger("{ private = false }", "\"app\""));
    let error = load_err(&public, &["app.wasm"]);
    assert!(
        matches!(&error, Error::InvalidRoute { trigger, .. } if trigger == "`[[trigger.http]]` #2"),
        "{}",
        chain(&error)
    );
    assert!(chain(&error).contains("`{ private = true }`"));

    let unknown = app_with(&trigger("{ private = true, public = 1 }", "\"app\""));
    assert_toml_error_at(
        &load_err(&unknown, &["app.wasm"]),
        13,
        "unknown field `public`",
    );
}

#[test]
fn inline_components_get_spins_generated_ids() {
    let inline = |source: &str| format!("{{ source = \"{source}\" }}");
    // Two unnamed inline triggers after one that names its component: the referencing trigger
    // is `app-http-trigger`, the others count up from `http-trigger1`.
    let manifest = app_with(&format!(
        "{}{}",
        trigger("\"/a\"", &inline("a.wasm")),
        trigger("\"/b\"", &inline("b.wasm"))
    ));
    let routes = routes_of(&manifest, &["app.wasm", "a.wasm", "b.wasm"]);
    assert_eq!(routes[1].1, "http-trigger1-component");
    assert_eq!(routes[2].1, "http-trigger2-component");

    // An explicit id names the component; an id that would make an invalid component id, or
    // one already taken, falls back to `inline-component<N>`.
    let manifest = app_with(&format!(
        "{}id = \"api\"\n{}id = \"My Trigger\"\n{}id = \"taken\"\n\
         [component.taken-component]\nsource = \"app.wasm\"\n",
        trigger("\"/api\"", &inline("a.wasm")),
        trigger("\"/mine\"", &inline("b.wasm")),
        trigger("\"/taken\"", &inline("c.wasm")),
    ));
    let loaded = load_ok(&manifest, &["app.wasm", "a.wasm", "b.wasm", "c.wasm"]);
    let ids: Vec<&str> = loaded
        .app
        .http_triggers
        .iter()
        .map(|t| t.component.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "app",
            "api-component",
            "inline-component1",
            "inline-component2"
        ]
    );
    // Inline components are full components.
    let inline_component = &loaded.app.components["api-component"];
    assert_eq!(inline_component.id, "api-component");
    assert!(loaded.artifacts.contains_key(&inline_component.source));

    // An explicit id that collides with a generated one pushes the counter on.
    let manifest = format!(
        "{}{}",
        app_with("").replace(
            "[[trigger.http]]\nroute = \"/...\"",
            "[[trigger.http]]\nid = \"http-trigger1\"\nroute = \"/...\""
        ),
        trigger("\"/x\"", &inline("a.wasm"))
    );
    let routes = routes_of(&manifest, &["app.wasm", "a.wasm"]);
    assert_eq!(routes[1].1, "http-trigger2-component");

    let bad_inline = app_with(&trigger("\"/x\"", "{ source = \"a.wasm\", fils = [] }"));
    assert_toml_error_at(
        &load_err(&bad_inline, &["app.wasm", "a.wasm"]),
        14,
        "unknown field `fils`",
    );
}

#[test]
fn executors() {
    for executor in ["{ type = \"http\" }", "{ type = \"spin\" }"] {
        let manifest = app_with(&format!(
            "{}executor = {executor}\n",
            trigger("\"/x\"", "\"app\"")
        ));
        load_ok(&manifest, &["app.wasm"]);
    }
    let wagi = app_with(&format!(
        "{}executor = {{ type = \"wagi\", argv = \"${{SCRIPT_NAME}}\" }}\n",
        trigger("\"/x\"", "\"app\"")
    ));
    let error = load_err(&wagi, &["app.wasm"]);
    assert!(
        matches!(&error, Error::UnsupportedExecutor { executor, .. } if executor == "wagi"),
        "{}",
        chain(&error)
    );
    let http_with_argv = app_with(&format!(
        "{}executor = {{ type = \"http\", argv = \"x\" }}\n",
        trigger("\"/x\"", "\"app\"")
    ));
    assert!(matches!(
        load_err(&http_with_argv, &["app.wasm"]),
        Error::UnsupportedField {
            field: "executor.argv",
            ..
        }
    ));
}

#[test]
fn other_trigger_types_are_not_supported_yet() {
    let manifest = app_with("[[trigger.redis]]\nchannel = \"orders\"\ncomponent = \"app\"\n");
    let error = load_err(&manifest, &["app.wasm"]);
    assert!(
        matches!(&error, Error::UnsupportedTriggerType { trigger_type, .. } if trigger_type == "redis")
    );
    assert!(chain(&error).contains("`[[trigger.redis]]` triggers are not supported yet"));
}

#[test]
fn trigger_components_must_exist() {
    let unknown = app_with(&trigger("\"/x\"", "\"nope\""));
    let error = load_err(&unknown, &["app.wasm"]);
    assert!(
        matches!(&error, Error::UnknownComponent { component, trigger, .. }
            if component == "nope" && trigger == "`[[trigger.http]]` #2"),
        "{}",
        chain(&error)
    );
    let missing = app_with("[[trigger.http]]\nid = \"lonely\"\nroute = \"/x\"\n");
    let error = load_err(&missing, &["app.wasm"]);
    assert!(
        matches!(&error, Error::MissingComponent { trigger, .. }
            if trigger == "`[[trigger.http]]` #2 (id `lonely`)"),
        "{}",
        chain(&error)
    );
}

#[test]
fn unimplemented_trigger_fields_are_refused() {
    for (line, field) in [
        ("static_response = { status_code = 404 }", "static_response"),
        ("components = { middleware = \"app\" }", "components"),
        ("dependencies = { x = [] }", "dependencies"),
    ] {
        let manifest = app_with(&format!("{}{line}\n", trigger("\"/x\"", "\"app\"")));
        let error = load_err(&manifest, &["app.wasm"]);
        assert!(
            matches!(&error, Error::UnsupportedField { field: f, .. } if *f == field),
            "{}",
            chain(&error)
        );
    }
    let unknown = app_with(&format!("{}rout = \"/y\"\n", trigger("\"/x\"", "\"app\"")));
    assert_toml_error_at(
        &load_err(&unknown, &["app.wasm"]),
        15,
        "unknown field `rout`",
    );
    let no_route = app_with("[[trigger.http]]\ncomponent = \"app\"\n");
    assert!(chain(&load_err(&no_route, &["app.wasm"])).contains("missing field `route`"));
    let no_triggers = app_with("").replace(
        "[[trigger.http]]\nroute = \"/...\"\ncomponent = \"app\"\n",
        "",
    );
    assert!(chain(&load_err(&no_triggers, &["app.wasm"])).contains("missing field `trigger`"));
}

#[test]
fn routes_are_checked_like_the_router() {
    for (route, reason) in [
        ("/*rest", "takes no name"),
        ("/users/:", "must have a name"),
        ("/*/x", "must be the last part"),
    ] {
        let manifest = app_with(&trigger(&format!("\"{route}\""), "\"app\""));
        let error = load_err(&manifest, &["app.wasm"]);
        let text = chain(&error);
        assert!(
            matches!(&error, Error::InvalidRoute { route: r, .. } if r == route),
            "{text}"
        );
        assert!(text.contains(reason), "{text}");
    }
    for (first, second) in [
        ("/...", "/..."),
        ("/...", "/*"),
        ("/...", "..."),
        ("/...", "/.../"),
    ] {
        let manifest = app_with(&trigger(&format!("\"{second}\""), "\"app\""))
            .replace("route = \"/...\"", &format!("route = \"{first}\""));
        let error = load_err(&manifest, &["app.wasm"]);
        assert!(
            matches!(&error, Error::DuplicateRoute { trigger, previous_trigger, .. }
                if trigger == "`[[trigger.http]]` #2" && previous_trigger == "`[[trigger.http]]` #1"),
            "{first} {second}: {}",
            chain(&error)
        );
    }
    // `/` and `/...` overlap but are different routes, as in Spin.
    let manifest = app_with(&trigger("\"/\"", "\"app\""));
    assert_eq!(routes_of(&manifest, &["app.wasm"]).len(), 2);
}
