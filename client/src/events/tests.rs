use serde_json::json;

use super::*;
use crate::AgentState;

fn event(frame: Value) -> Event {
    match parse_frame(&frame.to_string()) {
        Ok(EventFrame::Event(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[test]
fn an_event_keeps_its_id_time_and_typed_fields() {
    let deployed = event(json!({
        "id": "1700000000000-3", "at": "2030-01-01T00:00:00+00:00",
        "type": "function_deployed", "project": "p1", "function": "hello", "version": 4
    }));
    assert_eq!(deployed.id, "1700000000000-3");
    assert_eq!(deployed.at, "2030-01-01T00:00:00+00:00");
    assert_eq!(
        deployed.kind,
        EventKind::FunctionDeployed(FunctionDeployed {
            project: "p1".to_owned(),
            function: "hello".to_owned(),
            version: 4,
        })
    );
    assert_eq!(deployed.kind.name(), "function_deployed");
}

#[test]
fn invocation_finished_has_optional_version_target_and_duration() {
    let base = json!({
        "id": "1-0", "at": "t", "type": "invocation_finished",
        "project": "p1", "function": "hello", "status": 200
    });
    let EventKind::InvocationFinished(bare) = event(base.clone()).kind else {
        panic!("expected invocation_finished");
    };
    assert_eq!(
        (
            bare.version,
            bare.target,
            bare.duration_us,
            bare.agent,
            bare.invocation
        ),
        (None, None, None, None, None)
    );
    let mut full = base;
    full["version"] = json!(3);
    full["target"] = json!("aws-lambda");
    full["duration_us"] = json!(1250);
    full["agent"] = json!("a1");
    let EventKind::InvocationFinished(full) = event(full).kind else {
        panic!("expected invocation_finished");
    };
    assert_eq!(full.version, Some(3));
    assert_eq!(full.target.as_deref(), Some("aws-lambda"));
    assert_eq!(full.duration_us, Some(1250));
    assert_eq!(full.agent.as_deref(), Some("a1"));
}

#[test]
fn guest_logs_are_typed() {
    let log = event(json!({
        "id": "1-1", "at": "t", "type": "guest_log", "project": "p1", "function": "hello",
        "request_id": "r1", "stream": "stderr", "text": "boom\n", "truncated": false
    }));
    assert_eq!(
        log.kind,
        EventKind::GuestLog(GuestLog {
            project: "p1".to_owned(),
            function: "hello".to_owned(),
            version: None,
            agent: None,
            invocation: None,
            request_id: Some("r1".to_owned()),
            stream: LogStream::Stderr,
            text: "boom\n".to_owned(),
            truncated: false,
        })
    );
}

#[test]
fn an_unknown_type_is_kept_with_its_fields() {
    let unknown = event(json!({
        "id": "2-0", "at": "t", "type": "quota_exceeded", "project": "p1", "limit": 10
    }));
    let EventKind::Unknown(UnknownEvent { kind, fields }) = &unknown.kind else {
        panic!("expected an unknown event, got {unknown:?}");
    };
    assert_eq!(kind, "quota_exceeded");
    assert_eq!(
        Value::Object(fields.clone()),
        json!({"project": "p1", "limit": 10})
    );
    assert_eq!(unknown.kind.name(), "quota_exceeded");
}

#[test]
fn unknown_values_of_known_fields_are_kept() {
    let changed = event(json!({
        "id": "3-0", "at": "t", "type": "agent_changed", "project": "p1", "agent": "a1",
        "state": "hibernating"
    }));
    assert!(matches!(
        changed.kind,
        EventKind::AgentChanged(AgentChanged { state: AgentState::Other(ref state), .. })
            if state == "hibernating"
    ));
}

#[test]
fn a_missed_frame_is_its_own_item() {
    let frame =
        json!({"type": "missed", "message": "the listener fell behind and 3 events went by"});
    assert_eq!(
        parse_frame(&frame.to_string()),
        Ok(EventFrame::Missed {
            message: "the listener fell behind and 3 events went by".to_owned()
        })
    );
}

#[test]
fn frames_that_are_not_events_are_errors() {
    for frame in [
        "not json".to_owned(),
        json!([1, 2]).to_string(),
        json!({"at": "t", "type": "agent_deleted", "project": "p", "agent": "a"}).to_string(),
        json!({"id": "1-0", "at": "t", "project": "p"}).to_string(),
        json!({"id": "1-0", "at": "t", "type": "agent_deleted", "project": "p"}).to_string(),
        json!({"id": "1-0", "at": "t", "type": "function_deployed", "project": "p",
            "function": "f", "version": "two"})
        .to_string(),
    ] {
        assert!(parse_frame(&frame).is_err(), "{frame}");
    }
}

#[test]
fn every_known_type_parses_and_names_itself() {
    let fields = json!({
        "project": "p", "agent": "a", "name": "n", "state": "active", "function": "f",
        "version": 1, "invocation": "i", "attempt": 1, "status": 200, "error": "e",
        "node": "n1", "region": "eu", "reason": "lease", "stream": "stdout", "text": "x",
        "truncated": true
    });
    for name in [
        "agent_created",
        "agent_changed",
        "agent_deleted",
        "function_deployed",
        "invocation_queued",
        "invocation_started",
        "invocation_finished",
        "invocation_dead",
        "node_joined",
        "node_lost",
        "guest_log",
    ] {
        let mut frame = fields.clone();
        frame["id"] = json!("1-0");
        frame["at"] = json!("t");
        frame["type"] = json!(name);
        let parsed = event(frame);
        assert!(
            !matches!(parsed.kind, EventKind::Unknown(_)),
            "{name} parsed as unknown"
        );
        assert_eq!(parsed.kind.name(), name);
    }
}
