use super::*;

fn refusal(status: u16, headers: &[(&str, &str)], body: &str) -> ClientError {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    ClientError::from_answer(StatusCode::from_u16(status).unwrap(), &map, body.as_bytes())
}

fn envelope(code: &str, message: &str) -> String {
    serde_json::json!({"error": {"code": code, "message": message, "request_id": "req-1"}})
        .to_string()
}

#[test]
fn the_error_body_is_parsed_into_its_fields() {
    let error = refusal(404, &[], &envelope("not_found", "project not found"));
    let ClientError::Api {
        status,
        code,
        message,
        request_id,
        retry_after,
    } = &error
    else {
        panic!("expected a refusal, got {error:?}");
    };
    assert_eq!(*status, StatusCode::NOT_FOUND);
    assert_eq!(code, "not_found");
    assert_eq!(message, "project not found");
    assert_eq!(request_id, "req-1");
    assert_eq!(*retry_after, None);
    assert!(error.is_not_found());
    assert_eq!(error.code(), Some("not_found"));
    assert_eq!(
        error.to_string(),
        "the coordinator answered 404 Not Found: project not found (code not_found, request id \
         req-1)"
    );
}

#[test]
fn a_body_that_is_not_the_error_body_is_kept_as_the_message() {
    let error = refusal(
        502,
        &[("x-request-id", "from-header")],
        "  <h1>Bad Gateway</h1>\n",
    );
    assert!(matches!(
        &error,
        ClientError::Api { code, message, request_id, .. }
            if code == "unknown" && message == "<h1>Bad Gateway</h1>" && request_id == "from-header"
    ));
    let empty = refusal(503, &[], "");
    assert!(matches!(&empty, ClientError::Api { message, .. } if message == "Service Unavailable"));
}

#[test]
fn retry_after_is_read_from_its_header() {
    let error = refusal(
        429,
        &[("retry-after", "3")],
        &envelope("overloaded", "too many requests"),
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3)));
    assert!(error.hint().unwrap().contains("Retry-After"));
}

#[test]
fn common_refusals_get_a_next_step() {
    let hint = |status, message: &str| refusal(status, &[], &envelope("x", message)).hint();
    assert_eq!(
        hint(401, "invalid access token"),
        Some("log in again: nexus login")
    );
    assert!(
        hint(401, "node administration needs the cluster's join token")
            .unwrap()
            .contains("join token")
    );
    assert_eq!(
        hint(404, "project not found"),
        Some("list your projects: nexus projects")
    );
    assert_eq!(
        hint(404, "agent not found"),
        Some("list the project's agents: nexus agents")
    );
    assert_eq!(
        hint(404, "function not found"),
        Some("list the project's functions: nexus functions")
    );
    assert!(
        hint(404, "function version not found")
            .unwrap()
            .contains("version")
    );
    assert!(
        hint(404, "project member not found")
            .unwrap()
            .contains("member")
    );
    assert!(
        hint(404, "route not found")
            .unwrap()
            .contains("older than this client")
    );
    assert!(
        hint(413, "the upload is larger than 67108864 bytes")
            .unwrap()
            .contains("size limit")
    );
    assert!(hint(403, "forbidden").unwrap().contains("owners or admins"));
    assert_eq!(hint(409, "the name is taken"), None);
}

#[test]
fn transport_failures_get_a_next_step_too() {
    let connect = ClientError::Connect {
        url: "http://127.0.0.1:1/v1/projects".to_owned(),
        source: "connection refused".into(),
    };
    assert!(connect.hint().unwrap().contains("nexus up"));
    assert_eq!(connect.status(), None);
    let timeout = ClientError::Timeout {
        url: "http://127.0.0.1:1/healthz".to_owned(),
        limit: Duration::from_secs(30),
    };
    assert_eq!(
        timeout.to_string(),
        "http://127.0.0.1:1/healthz did not answer within 30s"
    );
    assert!(timeout.hint().unwrap().contains("longer time limit"));
}
