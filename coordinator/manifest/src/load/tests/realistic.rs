//! A manifest shaped like a real multi-component Spin app.

use nexus_proto::Digest;
use nexus_proto::app::{HttpRoute, Template, TemplatePart};

use super::{load, write_app};

const SHOP: &str = r#"spin_manifest_version = 2

[application]
name = "shop"
version = "0.3.1"
authors = ["Shop Team <shop@example.com>"]
description = "A small shop"

[application.trigger.http]
base = "/"

[variables]
api_host = { default = "api.example.com" }
api_token = { required = true, secret = true }
greeting = { default = "hello", description = "what the front page says" }

[[trigger.http]]
route = "/"
component = "frontend"

[[trigger.http]]
route = "/static/..."
component = { source = "static.wasm", description = "files", variables = { root = "/www" } }

[[trigger.http]]
route = "/api/products/:id"
component = "products"

[[trigger.http]]
id = "cart-api"
route = "/api/cart/..."
component = "cart"
executor = { type = "spin" }

[[trigger.http]]
route = { private = true }
component = "inventory"

[[trigger.http]]
route = "/health"
component = { source = "target/wasm32-wasip2/release/health.wasm" }

[component.frontend]
source = "frontend/dist/frontend.wasm"
description = "Server-rendered pages"
allowed_outbound_hosts = ["http://self", "https://{{ api_host }}"]
variables = { greeting = "{{ greeting }}, shopper" }
exclude_files = ["**/*.map"]
[component.frontend.build]
command = ["npm install", "npm run build"]
workdir = "frontend"
watch = ["src/**/*"]

[component.products]
source = "products/target/wasm32-wasip2/release/products.wasm"
key_value_stores = ["default"]
allowed_outbound_hosts = ["https://{{ api_host }}"]
[component.products.variables]
api_url = "https://{{ api_host }}/v2"
token = "{{api_token}}"
[component.products.build]
command = "cargo build --target wasm32-wasip2 --release"
workdir = "products"

[component.cart]
source = "cart.wasm"
key_value_stores = ["default", "carts"]
environment = { RUST_LOG = "info", CART_TTL = "3600" }
[component.cart.tool.spin-test]
source = "tests/cart-test.wasm"

[component.inventory]
source = "cart.wasm"
description = "Same code as the cart, reached only through service chaining"
"#;

#[test]
fn loads_a_realistic_spin_app() {
    let files = [
        "frontend/dist/frontend.wasm",
        "static.wasm",
        "products/target/wasm32-wasip2/release/products.wasm",
        "cart.wasm",
        "target/wasm32-wasip2/release/health.wasm",
    ];
    let dir = write_app(SHOP, &files);
    let loaded = load(&dir.path().join("spin.toml")).unwrap();
    let app = &loaded.app;

    assert_eq!(app.name, "shop");
    assert_eq!(app.version.as_deref(), Some("0.3.1"));
    assert_eq!(
        app.variables.keys().collect::<Vec<_>>(),
        ["api_host", "api_token", "greeting"]
    );
    assert!(app.variables["api_token"].required && app.variables["api_token"].secret);

    // Triggers keep manifest order; the inline components get Spin's generated ids.
    let triggers: Vec<(HttpRoute, &str)> = app
        .http_triggers
        .iter()
        .map(|t| (t.route.clone(), t.component.as_str()))
        .collect();
    let path = |route: &str| HttpRoute::Path(route.to_owned());
    assert_eq!(
        triggers,
        [
            (path("/"), "frontend"),
            (path("/static/..."), "http-trigger1-component"),
            (path("/api/products/:id"), "products"),
            (path("/api/cart/..."), "cart"),
            (HttpRoute::Private, "inventory"),
            (path("/health"), "http-trigger2-component"),
        ]
    );
    assert_eq!(
        app.components.keys().collect::<Vec<_>>(),
        [
            "cart",
            "frontend",
            "http-trigger1-component",
            "http-trigger2-component",
            "inventory",
            "products"
        ]
    );

    let literal = |text: &str| TemplatePart::Literal(text.to_owned());
    let variable = |name: &str| TemplatePart::Variable(name.to_owned());
    let products = &app.components["products"];
    assert_eq!(products.key_value_stores, ["default"]);
    assert_eq!(
        products.variables["api_url"],
        Template(vec![
            literal("https://"),
            variable("api_host"),
            literal("/v2")
        ])
    );
    assert_eq!(
        products.variables["token"],
        Template(vec![variable("api_token")])
    );
    let frontend = &app.components["frontend"];
    assert_eq!(
        super::hosts(frontend),
        ["http://self", "https://{{ api_host }}"]
    );
    assert_eq!(
        frontend.variables["greeting"],
        Template(vec![variable("greeting"), literal(", shopper")])
    );
    assert_eq!(
        app.components["http-trigger1-component"].variables["root"],
        Template(vec![literal("/www")])
    );
    assert_eq!(app.components["cart"].environment["CART_TTL"], "3600");

    // Digests come from the files; cart and inventory share one file, so one artifact.
    assert_eq!(
        app.components["cart"].source,
        app.components["inventory"].source
    );
    assert_eq!(loaded.artifacts.len(), files.len());
    for file in files {
        let digest = Digest::of(file.as_bytes());
        let artifact = &loaded.artifacts[&digest];
        assert!(artifact.is_absolute() && artifact.ends_with(file), "{file}");
    }
    assert!(
        app.components
            .values()
            .all(|component| loaded.artifacts.contains_key(&component.source))
    );
}
