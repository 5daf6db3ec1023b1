//! Entry points for the `rest_requests` fuzz target (`fuzz/`): each runs the API's own decoding
//! of one part of a request (the extractors and the parsing behind the handlers, never copies
//! of them) on arbitrary bytes, and checks what must hold of what it accepts. Not an API:
//! hidden from the docs, and nothing but the fuzz target and the tests below calls it.
//!
//! An input's first byte picks the decoder ([`DECODERS`], modulo their number); the rest is
//! what that decoder reads.

use axum::body::Body;
use axum::extract::{FromRequest, Query};
use axum::http::header::{CONTENT_TYPE, IF_MATCH, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Uri};
use chrono::Utc;
use nexus_proto::Digest;
use nexus_proto::app::HttpTrigger;
use serde::de::DeserializeOwned;

use super::JsonBody;
use super::{agent_context, agents, api_keys, auth, functions, invocations, projects};
use super::{schedules, ws};
use crate::cloud::PlacementMode;
use crate::cluster::Priority;
use crate::functions::{DeployLimits, Upload};

/// The multipart boundary of the deploy decoder's multipart bodies.
pub const BOUNDARY: &str = "nexusfuzz";

/// A decoder: answers whether it accepted its input.
pub type Decoder = fn(&[u8]) -> bool;

/// What each input's first byte chooses, in order, by name (the seed corpus has an input each
/// accepts).
pub const DECODERS: &[(&str, Decoder)] = &[
    ("trigger_path", trigger_path),
    ("deploy_upload", deploy_upload),
    ("function_change", function_change),
    ("alias_change", |data| {
        json::<functions::AliasChange>(data).is_some()
    }),
    ("invoke", invoke),
    ("dead_letters", dead_letters),
    ("new_schedule", new_schedule),
    ("new_agent", |data| {
        json::<agents::NewAgentBody>(data).is_some()
    }),
    ("register", |data| json::<auth::Register>(data).is_some()),
    ("login", |data| json::<auth::Login>(data).is_some()),
    ("refresh", |data| json::<auth::Refresh>(data).is_some()),
    ("new_key", |data| json::<api_keys::NewKey>(data).is_some()),
    ("new_project", |data| {
        json::<projects::NewProject>(data).is_some()
    }),
    ("project_change", |data| {
        json::<projects::ProjectChange>(data).is_some()
    }),
    ("new_member", |data| {
        json::<projects::NewMember>(data).is_some()
    }),
    ("role_change", |data| {
        json::<projects::RoleChange>(data).is_some()
    }),
    ("query", query),
    ("conditional_headers", conditional_headers),
];

/// Runs the decoder `data[0]` picks on the rest of `data`; panics when a property fails.
pub fn rest_request(data: &[u8]) -> bool {
    let Some((selector, rest)) = data.split_first() else {
        return false;
    };
    DECODERS
        .get(usize::from(*selector) % DECODERS.len())
        .is_some_and(|(_, decode)| decode(rest))
}

/// The trigger's `/{project}/{function}[@alias]/…` split: the names are the path's own text
/// and the mount prefix ends where the function's name does.
fn trigger_path(data: &[u8]) -> bool {
    let Ok(path) = std::str::from_utf8(data) else {
        return false;
    };
    let route = crate::trigger::trigger_route(path);
    let is_trigger = crate::trigger::is_trigger_path(path);
    let Some((project, function, alias, prefix_len)) = crate::trigger::split_path(path) else {
        assert!(!is_trigger, "{path:?}");
        assert_eq!(route, path);
        return false;
    };
    // Slicing panics, and so fails the target, if the prefix ends inside a character.
    let prefix = &path[..prefix_len];
    assert_eq!(route, prefix);
    // `/{project}/` then the function's segment: its name, and `@alias` when one is named.
    let segment = &prefix[project.len() + 2..];
    if segment.contains('@') {
        assert_eq!(segment, format!("{function}@{alias}"), "{path:?}");
    } else {
        assert_eq!(
            (segment, alias),
            (function, crate::functions::LIVE),
            "{path:?}"
        );
    }
    assert_eq!(
        &prefix[..project.len() + 2],
        format!("/{project}/"),
        "{path:?}"
    );
    let rest = &path[prefix_len..];
    assert!(rest.is_empty() || rest.starts_with('/'), "{path:?}");
    assert!(!project.contains('/') && !function.contains('/') && !function.contains('@'));
    is_trigger
}

/// A deploy body as `POST …/versions` reads it (by the next byte: a tar, a multipart body with
/// [`BOUNDARY`], or one component), unpacked and resolved as a deploy does. What resolves
/// names only uploaded bytes, by their digests.
fn deploy_upload(data: &[u8]) -> bool {
    const CONTENT_TYPES: [&str; 3] = [
        "application/x-tar",
        "multipart/form-data; boundary=nexusfuzz",
        "application/wasm",
    ];
    let Some((kind, body)) = data.split_first() else {
        return false;
    };
    let content_type = CONTENT_TYPES[usize::from(*kind) % CONTENT_TYPES.len()];
    let Ok(request) = Request::builder()
        .header(CONTENT_TYPE, content_type)
        .body(Body::from(body.to_vec()))
    else {
        return false;
    };
    let limits = DeployLimits::default();
    let read = functions::read_upload(request, &(), limits.max_upload_bytes);
    let Ok(upload) = futures::executor::block_on(read) else {
        return false;
    };
    let component_upload = matches!(upload, Upload::Component(_));
    let Ok((app, components)) = crate::functions::resolve_upload(upload, "fuzz", &limits) else {
        assert!(!component_upload, "a single component always makes an app");
        return false;
    };
    for component in app.components.values() {
        let bytes = &components[&component.source];
        assert_eq!(Digest::of(bytes), component.source);
    }
    assert!(
        app.http_triggers
            .iter()
            .all(|HttpTrigger { component, .. }| app.components.contains_key(component))
    );
    true
}

/// `PATCH …/functions/{f}`: the change parsed, then checked as the service checks it. The
/// names parsed print back as themselves.
fn function_change(data: &[u8]) -> bool {
    let Some(change) = json::<functions::FunctionChange>(data) else {
        return false;
    };
    let Ok(update) = functions::function_update(change) else {
        return false;
    };
    if let Some(priority) = update.priority {
        assert_eq!(
            priority.to_string().parse::<Priority>().ok(),
            Some(priority)
        );
    }
    if let Some(placement) = update.placement {
        assert_eq!(
            placement.to_string().parse::<PlacementMode>().ok(),
            Some(placement)
        );
    }
    let selector_ok = update
        .node_selector
        .as_ref()
        .is_none_or(|selector| crate::functions::validate_node_selector(selector).is_ok());
    let retry_ok = update
        .async_retry
        .as_ref()
        .is_none_or(|retry| crate::functions::validate_async_retry(retry).is_ok());
    selector_ok && retry_ok
}

/// `POST …/invocations`: the body, then the request the function would see.
fn invoke(data: &[u8]) -> bool {
    let Some(body) = json::<invocations::InvokeBody>(data) else {
        return false;
    };
    let mut api_headers = HeaderMap::new();
    api_headers.insert("host", HeaderValue::from_static("coordinator.test"));
    let Ok(request) = invocations::function_request(&body, &api_headers) else {
        return false;
    };
    assert!(request.uri().path().starts_with('/'));
    assert!(request.uri().authority().is_none());
    assert!(request.headers().contains_key("host"));
    invocations::idempotency_key(body.idempotency_key.as_deref()).is_ok()
}

/// `POST …/invocations/redrive|purge`: the body and its ids.
fn dead_letters(data: &[u8]) -> bool {
    json::<invocations::DeadLettersBody>(data)
        .is_some_and(|body| invocations::parse_ids(body.ids).is_ok())
}

/// `POST …/schedules`: the body, when it fires (a cron expression's next tick), its method.
fn new_schedule(data: &[u8]) -> bool {
    let Some(body) = json::<schedules::NewScheduleBody>(data) else {
        return false;
    };
    let when = match schedules::when(&body) {
        Ok(crate::schedules::When::Cron(expression)) => crate::schedules::parse_cron(&expression)
            .and_then(|cron| crate::schedules::next_tick(&cron, Utc::now()))
            .map(|next| assert!(next > Utc::now() - chrono::TimeDelta::seconds(1)))
            .is_ok(),
        Ok(_) => true,
        Err(_) => false,
    };
    when && crate::schedules::method(body.method.as_deref()).is_ok()
}

/// The query strings of every route that takes one, as `Query` decodes them.
fn query(data: &[u8]) -> bool {
    let Ok(query) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(uri) = format!("/?{query}").parse::<Uri>() else {
        return false;
    };
    let decoded = [
        Query::<functions::DeployQuery>::try_from_uri(&uri).is_ok(),
        Query::<agents::PageQuery>::try_from_uri(&uri).is_ok(),
        Query::<agents::MessageQuery>::try_from_uri(&uri).is_ok(),
        Query::<invocations::ListQuery>::try_from_uri(&uri).is_ok(),
        Query::<agent_context::StoreQuery>::try_from_uri(&uri).is_ok(),
        Query::<agent_context::PutQuery>::try_from_uri(&uri).is_ok(),
        Query::<ws::EventsQuery>::try_from_uri(&uri).is_ok(),
        Query::<ws::AgentQuery>::try_from_uri(&uri).is_ok(),
    ];
    decoded.iter().all(|ok| *ok)
}

/// `If-Match`, `If-None-Match` (a context write's condition) and `Prefer` from header values
/// separated by NUL bytes.
fn conditional_headers(data: &[u8]) -> bool {
    let mut values = data.split(|byte| *byte == 0);
    let mut headers = HeaderMap::new();
    let names = [IF_MATCH, IF_NONE_MATCH, HeaderName::from_static("prefer")];
    for name in names {
        if let Some(value) = values.next().filter(|value| !value.is_empty())
            && let Ok(value) = HeaderValue::from_bytes(value)
        {
            headers.insert(name, value);
        }
    }
    let _ = invocations::wants_async(&headers);
    agent_context::condition(&headers).is_ok()
}

/// A JSON body as the handlers' `JsonBody` extractor decodes it; it accepts only JSON.
fn json<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    let request = Request::builder()
        .header(CONTENT_TYPE, "application/json")
        .body(Body::from(data.to_vec()))
        .ok()?;
    let JsonBody(value) =
        futures::executor::block_on(JsonBody::<T>::from_request(request, &())).ok()?;
    // Not `serde_json::Value` accepting `data` too: serde_json skips a field the type does not
    // know without checking that its string is UTF-8 (the fuzzer found `{"email": "\xff"}`
    // accepted as a body whose type has no `email`), so only what the type kept is checked.
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed seed corpus: every input runs, and each decoder accepts at least one, so
    /// the fuzzer starts from inputs that reach past the parsers.
    #[test]
    fn the_seed_corpus_reaches_every_decoder() {
        let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/corpus/rest_requests");
        let mut accepted = vec![false; DECODERS.len()];
        for entry in std::fs::read_dir(corpus).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if rest_request(&data) {
                accepted[usize::from(data[0]) % DECODERS.len()] = true;
            }
        }
        let missing: Vec<_> = DECODERS
            .iter()
            .zip(&accepted)
            .filter(|(_, accepted)| !**accepted)
            .map(|((name, _), _)| *name)
            .collect();
        assert!(missing.is_empty(), "no seed accepted by {missing:?}");
    }

    #[test]
    fn selectors_wrap_and_empty_input_is_refused() {
        assert!(!rest_request(b""));
        let first = [0u8].iter().chain(b"/p/f@a/x").copied().collect::<Vec<_>>();
        let wrapped = [DECODERS.len() as u8]
            .iter()
            .chain(b"/p/f@a/x")
            .copied()
            .collect::<Vec<_>>();
        assert!(rest_request(&first));
        assert!(rest_request(&wrapped));
    }
}
