//! Projects and members, and the RBAC table: every project endpoint × every role × a
//! non-member, each on a project of its own.

use http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Api, assert_error};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Owner,
    Admin,
    Developer,
    Viewer,
    Outsider,
}

const ACTORS: [Actor; 5] = [
    Actor::Owner,
    Actor::Admin,
    Actor::Developer,
    Actor::Viewer,
    Actor::Outsider,
];

/// The access tokens of the table's actors, and the member they act on.
struct People {
    owner: String,
    admin: String,
    developer: String,
    viewer: String,
    outsider: String,
    target_id: String,
}

async fn add(api: &Api, owner: &str, project: &str, email: &str, role: &str) -> String {
    let added = api
        .call(
            "POST",
            &format!("/v1/projects/{project}/members"),
            Some(owner),
            Some(json!({"email": email, "role": role})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text());
    added.json()["user_id"].as_str().unwrap().to_owned()
}

/// POSTs `body` to `path` as `token`; the `id` of what it created.
async fn created_id(api: &Api, token: &str, path: &str, body: Value) -> String {
    let created = api.call("POST", path, Some(token), Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    created.json()["id"].as_str().unwrap().to_owned()
}

/// A fresh project with the admin, developer and viewer as members, and the target as a
/// viewer; its name and the target's user id.
async fn project(api: &Api, people: &People, name: &str) -> String {
    let created = api
        .call(
            "POST",
            "/v1/projects",
            Some(&people.owner),
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    for (email, role) in [
        ("admin@example.com", "admin"),
        ("developer@example.com", "developer"),
        ("viewer@example.com", "viewer"),
        ("target@example.com", "viewer"),
    ] {
        add(api, &people.owner, name, email, role).await;
    }
    name.to_owned()
}

impl People {
    fn token(&self, actor: Actor) -> &str {
        match actor {
            Actor::Owner => &self.owner,
            Actor::Admin => &self.admin,
            Actor::Developer => &self.developer,
            Actor::Viewer => &self.viewer,
            Actor::Outsider => &self.outsider,
        }
    }
}

/// A request body.
enum Send {
    Nothing,
    Json(Value),
    /// The `hello` component, as `application/wasm`.
    Wasm,
}

struct Case {
    method: &'static str,
    /// `{p}` is the project, `{target}` the target member's id, `{key}` an API key's id,
    /// `{agent}` the id of agent `a`. Each project has function `f`, deployed twice (`live` at
    /// version 2, so it can roll back).
    path: &'static str,
    body: Send,
    /// The answer for owner, admin, developer, viewer and outsider.
    expected: [u16; 5],
}

#[tokio::test]
async fn every_project_endpoint_answers_every_role_as_the_rbac_table_says() {
    let api = Api::start().await;
    let owner = api.user("owner@example.com").await;
    let admin = api.user("admin@example.com").await;
    let developer = api.user("developer@example.com").await;
    let viewer = api.user("viewer@example.com").await;
    let outsider = api.user("outsider@example.com").await;
    api.user("target@example.com").await;
    api.user("newcomer@example.com").await;
    let hello = std::fs::read(nexus_tests::component_path("hello")).unwrap();
    let mut people = People {
        owner,
        admin,
        developer,
        viewer,
        outsider,
        target_id: String::new(),
    };
    let cases = [
        Case {
            method: "GET",
            path: "/v1/projects/{p}",
            body: Send::Nothing,
            expected: [200, 200, 200, 200, 404],
        },
        Case {
            method: "GET",
            path: "/v1/projects/{p}/members",
            body: Send::Nothing,
            expected: [200, 200, 200, 200, 404],
        },
        Case {
            method: "PATCH",
            path: "/v1/projects/{p}",
            body: Send::Json(json!({"display_name": "Renamed"})),
            expected: [200, 200, 403, 403, 404],
        },
        Case {
            method: "DELETE",
            path: "/v1/projects/{p}",
            body: Send::Nothing,
            expected: [204, 403, 403, 403, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/members",
            body: Send::Json(json!({"email": "newcomer@example.com", "role": "viewer"})),
            expected: [201, 201, 403, 403, 404],
        },
        Case {
            method: "PATCH",
            path: "/v1/projects/{p}/members/{target}",
            body: Send::Json(json!({"role": "developer"})),
            expected: [204, 204, 403, 403, 404],
        },
        Case {
            method: "DELETE",
            path: "/v1/projects/{p}/members/{target}",
            body: Send::Nothing,
            expected: [204, 204, 403, 403, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/api-keys",
            body: Send::Json(json!({"name": "ci", "role": "viewer"})),
            expected: [201, 201, 403, 403, 404],
        },
        Case {
            method: "GET",
            path: "/v1/projects/{p}/api-keys",
            body: Send::Nothing,
            expected: [200, 200, 403, 403, 404],
        },
        Case {
            method: "DELETE",
            path: "/v1/projects/{p}/api-keys/{key}",
            body: Send::Nothing,
            expected: [204, 204, 403, 403, 404],
        },
        Case {
            method: "GET",
            path: "/v1/projects/{p}/functions",
            body: Send::Nothing,
            expected: [200, 200, 200, 200, 404],
        },
        Case {
            method: "PUT",
            path: "/v1/projects/{p}/functions/none/aliases/live",
            body: Send::Json(json!({"version": 1})),
            expected: [404, 404, 404, 403, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/functions/f/versions",
            body: Send::Wasm,
            expected: [201, 201, 201, 403, 404],
        },
        Case {
            method: "GET",
            path: "/v1/projects/{p}/functions/f",
            body: Send::Nothing,
            expected: [200, 200, 200, 200, 404],
        },
        Case {
            method: "PATCH",
            path: "/v1/projects/{p}/functions/f",
            body: Send::Json(json!({"priority": "high"})),
            expected: [200, 200, 200, 403, 404],
        },
        Case {
            method: "GET",
            path: "/v1/projects/{p}/functions/f/versions/1",
            body: Send::Nothing,
            expected: [200, 200, 200, 200, 404],
        },
        Case {
            method: "PUT",
            path: "/v1/projects/{p}/functions/f/aliases/live",
            body: Send::Json(json!({"version": 1})),
            expected: [200, 200, 200, 403, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/functions/f/aliases/live/rollback",
            body: Send::Nothing,
            expected: [200, 200, 200, 403, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/agents",
            body: Send::Json(json!({"name": "b", "function": "f"})),
            expected: [201, 201, 201, 403, 404],
        },
        Case {
            method: "GET",
            path: "/v1/projects/{p}/agents",
            body: Send::Nothing,
            expected: [200, 200, 200, 200, 404],
        },
        Case {
            method: "GET",
            path: "/v1/projects/{p}/agents/{agent}",
            body: Send::Nothing,
            expected: [200, 200, 200, 200, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/agents/{agent}/suspend",
            body: Send::Nothing,
            expected: [200, 200, 200, 403, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/agents/{agent}/resume",
            body: Send::Nothing,
            expected: [200, 200, 200, 403, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/agents/{agent}/messages",
            body: Send::Nothing,
            expected: [200, 200, 200, 403, 404],
        },
        Case {
            method: "GET",
            path: "/v1/projects/{p}/agents/{agent}/context",
            body: Send::Nothing,
            expected: [200, 200, 200, 200, 404],
        },
        Case {
            method: "PUT",
            path: "/v1/projects/{p}/agents/{agent}/context/k",
            body: Send::Nothing,
            expected: [204, 204, 204, 403, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/invocations",
            body: Send::Json(json!({"function": "f"})),
            expected: [200, 200, 200, 403, 404],
        },
        Case {
            method: "GET",
            path: "/v1/projects/{p}/invocations",
            body: Send::Nothing,
            expected: [200, 200, 200, 200, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/invocations/dead/redrive",
            body: Send::Json(json!({})),
            expected: [200, 200, 200, 403, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/invocations/dead/purge",
            body: Send::Json(json!({})),
            expected: [200, 200, 200, 403, 404],
        },
        Case {
            method: "POST",
            path: "/v1/projects/{p}/schedules",
            body: Send::Json(json!({"name": "s", "function": "f", "after_ms": 3_600_000})),
            expected: [201, 201, 201, 403, 404],
        },
        Case {
            method: "GET",
            path: "/v1/projects/{p}/schedules",
            body: Send::Nothing,
            expected: [200, 200, 200, 200, 404],
        },
        Case {
            method: "DELETE",
            path: "/v1/projects/{p}/agents/{agent}",
            body: Send::Nothing,
            expected: [204, 204, 204, 403, 404],
        },
    ];
    for (case_index, case) in cases.iter().enumerate() {
        for (actor, expected) in ACTORS.into_iter().zip(case.expected) {
            let name = format!("p{case_index}-{}", format!("{actor:?}").to_lowercase());
            let project = project(&api, &people, &name).await;
            let members = api
                .call(
                    "GET",
                    &format!("/v1/projects/{project}/members"),
                    Some(&people.owner),
                    None,
                )
                .await
                .json();
            people.target_id = members
                .as_array()
                .unwrap()
                .iter()
                .find(|member| member["email"] == "target@example.com")
                .unwrap()["user_id"]
                .as_str()
                .unwrap()
                .to_owned();
            let key = created_id(
                &api,
                &people.owner,
                &format!("/v1/projects/{project}/api-keys"),
                json!({"name": "table", "role": "viewer"}),
            )
            .await;
            for _ in 0..2 {
                let deployed = api
                    .send_bytes(
                        "POST",
                        &format!("/v1/projects/{project}/functions/f/versions"),
                        &people.owner,
                        "application/wasm",
                        hello.clone(),
                    )
                    .await;
                assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
            }
            let agent = created_id(
                &api,
                &people.owner,
                &format!("/v1/projects/{project}/agents"),
                json!({"name": "a", "function": "f"}),
            )
            .await;
            let path = case
                .path
                .replace("{p}", &project)
                .replace("{target}", &people.target_id)
                .replace("{key}", &key)
                .replace("{agent}", &agent);
            let token = people.token(actor);
            let response = match &case.body {
                Send::Nothing => api.call(case.method, &path, Some(token), None).await,
                Send::Json(body) => {
                    api.call(case.method, &path, Some(token), Some(body.clone()))
                        .await
                }
                Send::Wasm => {
                    api.send_bytes(case.method, &path, token, "application/wasm", hello.clone())
                        .await
                }
            };
            assert_eq!(
                response.status.as_u16(),
                expected,
                "{} {} as {actor:?}: {}",
                case.method,
                case.path,
                response.text()
            );
            if expected >= 400 {
                let code = match expected {
                    403 => "forbidden",
                    _ => "not_found",
                };
                assert_error(&response, response.status, code);
            }
        }
    }
    // A missing project and a project the caller is not in look the same.
    let missing = api
        .call(
            "GET",
            "/v1/projects/no-such-project",
            Some(&people.outsider),
            None,
        )
        .await;
    let hidden = api
        .call("GET", "/v1/projects/p0-owner", Some(&people.outsider), None)
        .await;
    assert_eq!(
        missing.json()["error"]["message"],
        hidden.json()["error"]["message"]
    );
}

#[tokio::test]
async fn owners_are_managed_by_owners_only_and_a_project_keeps_one() {
    let api = Api::start().await;
    let owner = api.user("o@example.com").await;
    let admin = api.user("a@example.com").await;
    api.user("x@example.com").await;
    let created = api
        .call(
            "POST",
            "/v1/projects",
            Some(&owner),
            Some(json!({"name": "shop"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.json()["role"], "owner");
    add(&api, &owner, "shop", "a@example.com", "admin").await;
    // An admin may not make owners.
    let promote = api
        .call(
            "POST",
            "/v1/projects/shop/members",
            Some(&admin),
            Some(json!({"email": "x@example.com", "role": "owner"})),
        )
        .await;
    assert_error(&promote, StatusCode::FORBIDDEN, "forbidden");
    // The last owner cannot leave the project ownerless.
    let members = api
        .call("GET", "/v1/projects/shop/members", Some(&owner), None)
        .await
        .json();
    let owner_id = members
        .as_array()
        .unwrap()
        .iter()
        .find(|member| member["role"] == "owner")
        .unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let demote = api
        .call(
            "PATCH",
            &format!("/v1/projects/shop/members/{owner_id}"),
            Some(&owner),
            Some(json!({"role": "viewer"})),
        )
        .await;
    assert_error(&demote, StatusCode::CONFLICT, "conflict");
    // Names are unique, URL-safe, and listed with the caller's role.
    let taken = api
        .call(
            "POST",
            "/v1/projects",
            Some(&admin),
            Some(json!({"name": "shop"})),
        )
        .await;
    assert_error(&taken, StatusCode::CONFLICT, "conflict");
    let bad = api
        .call(
            "POST",
            "/v1/projects",
            Some(&admin),
            Some(json!({"name": "Shop!"})),
        )
        .await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");
    let bad_role = api
        .call(
            "POST",
            "/v1/projects/shop/members",
            Some(&owner),
            Some(json!({"email": "x@example.com", "role": "root"})),
        )
        .await;
    assert_error(&bad_role, StatusCode::BAD_REQUEST, "bad_request");
    let listed = api
        .call("GET", "/v1/projects", Some(&admin), None)
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "shop");
    assert_eq!(listed[0]["role"], "admin");
}
