//! `nexus-edge azure`: an Azure Functions custom handler serving its bundle's app.
//!
//! The Functions host starts the handler as [`HOST_JSON`] says and forwards each request of
//! the HTTP trigger ([`FUNCTION_JSON`]: every method, every path under the route prefix) to
//! `127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT` unchanged; [`super::front::HttpHandler`] answers it
//! with the app mounted under the route prefix (`/api`), so the app sees itself at the root.

/// The Functions host configuration the handler ships with.
pub const HOST_JSON: &str = include_str!("../../azure/host.json");
/// The HTTP trigger the handler ships with, as `nexus/function.json`.
pub const FUNCTION_JSON: &str = include_str!("../../azure/nexus/function.json");
/// The function's name: the directory of [`FUNCTION_JSON`].
pub const FUNCTION_NAME: &str = "nexus";
/// The variable the Functions host sets to the port it forwards to.
pub const PORT_VARIABLE: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
/// The route prefix of `host.json`.
pub const ROUTE_PREFIX: &str = "/api";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_host_configuration_forwards_to_this_handler() {
        let host: serde_json::Value = serde_json::from_str(HOST_JSON).unwrap();
        let handler = &host["customHandler"];
        assert_eq!(
            handler["description"]["defaultExecutablePath"],
            "nexus-edge"
        );
        assert_eq!(
            handler["description"]["arguments"],
            serde_json::json!(["azure"])
        );
        assert_eq!(handler["enableForwardingHttpRequest"], true);
        assert_eq!(
            format!(
                "/{}",
                host["extensions"]["http"]["routePrefix"].as_str().unwrap()
            ),
            ROUTE_PREFIX
        );
        let function: serde_json::Value = serde_json::from_str(FUNCTION_JSON).unwrap();
        let trigger = &function["bindings"][0];
        assert_eq!(trigger["type"], "httpTrigger");
        assert_eq!(trigger["route"], "{*path}");
        assert_eq!(function["bindings"][1]["type"], "http");
    }
}
