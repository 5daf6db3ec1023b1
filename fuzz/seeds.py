#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/: real inputs of each kind the targets
decode (the repo's spin.toml, API request bodies, encoded cluster messages), each prefixed
with the byte that picks its decoder where the target has several. Run it again after
changing a target's selectors; the fuzzer's own finds go next to these, named by hash."""

import io
import json
import pathlib
import tarfile

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
DIGEST = "sha256:" + "ab" * 32

MANIFEST = b"""spin_manifest_version = 2

[application]
name = "seed"
version = "1.0.0"

[variables]
greeting = { default = "hello" }
token = { required = true, secret = true }

[[trigger.http]]
route = "/users/:id/..."
component = "app"

[[trigger.http]]
route = { private = true }
component = "other"

[component.app]
source = "app.wasm"
allowed_outbound_hosts = ["https://{{ greeting }}.example.com:443"]
key_value_stores = ["default"]
sqlite_databases = ["default"]
environment = { RUST_LOG = "info" }
[component.app.variables]
message = "{{ greeting }}, {{ token }}!"

[component.other]
source = "sub/other.wasm"
"""


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(tag, value):
    """A protobuf field: integers as varints, everything else length-delimited."""
    if isinstance(value, bool) or isinstance(value, int):
        return varint(tag << 3) + varint(int(value))
    if isinstance(value, str):
        value = value.encode()
    return varint(tag << 3 | 2) + varint(len(value)) + value


def message(*fields):
    return b"".join(field(tag, value) for tag, value in fields)


APP = json.dumps(
    {
        "name": "seed",
        "version": "1.0.0",
        "variables": {"greeting": {"default": "hi", "required": False, "secret": False}},
        "components": {
            "app": {
                "id": "app",
                "source": DIGEST,
                "allowed_outbound_hosts": [[{"Literal": "https://"}, {"Variable": "greeting"}]],
                "key_value_stores": ["default"],
                "sqlite_databases": [],
                "variables": {"message": [{"Literal": "hello"}]},
                "environment": {"RUST_LOG": "info"},
            }
        },
        "http_triggers": [
            {"route": {"Path": "/users/:id/..."}, "component": "app"},
            {"route": "Private", "component": "app"},
        ],
    }
).encode()

HEADER = message((1, "content-type"), (2, "text/plain"))
DEPLOYMENT = message((1, "0190f2b4-8c9e-7c3d-9a4e-3f1b2c3d4e5f"), (2, "project"), (3, APP))

PROTO = {
    "invoke_head": (0, message((1, message((1, DEPLOYMENT), (2, "/p/f"), (3, "10.0.0.1:4242"),
                                            (4, "POST"), (5, "/p/f/a?b=c"), (6, HEADER),
                                            (6, message((1, "x-raw"), (2, b"\xe2\x82\xac"))),
                                            (7, 2), (8, "agent-1"))))),
    "invoke_body": (0, message((2, b"hello"))),
    "invoke_end": (0, message((3, b""))),
    "response_head": (1, message((1, message((1, 200), (2, HEADER))))),
    "response_error": (1, message((3, message((1, 503), (2, "overloaded"), (3, "busy"),
                                              (4, 1000), (5, True))))),
    "response_log": (1, message((5, message((1, "out"), (2, "err"), (3, True))))),
    "register": (2, message((1, "edge-1"), (2, "eu-west"),
                            (3, message((1, "gpu"), (2, "true"))), (4, "http://10.0.0.2:9000"),
                            (5, message((1, 8), (2, 1 << 30))), (6, "wasmtime-48"), (7, DIGEST))),
    "register_response": (3, message((1, "node-1"), (2, 1000), (3, 3000))),
    "heartbeat": (4, message((1, "node-1"), (2, message((1, 2), (2, 6), (3, 0))), (3, DIGEST),
                             (4, True))),
    "lease_update": (5, message((1, 3000), (2, 2))),
    "fetch": (6, message((1, DIGEST))),
    "chunk": (7, message((1, b"\0asm\x01\0\0\0"), (2, 8))),
    "drain": (8, b""),
    "drain_response": (9, message((1, 3))),
    "prefetch": (10, message((1, DEPLOYMENT))),
    "prefetch_response": (11, message((1, DIGEST))),
    "create_agent": (12, message((1, "project"), (2, "agent-1"), (3, "f"), (4, "live"),
                                 (5, message((1, "k"), (2, b"v"))))),
    "get_agent": (13, message((1, "project"), (2, "0190f2b4-8c9e-7c3d-9a4e-3f1b2c3d4e5f"))),
    "list_agents": (14, message((1, "project"), (2, 50), (3, "agent-1"))),
    "agent_ref": (15, message((1, "project"), (2, "0190f2b4-8c9e-7c3d-9a4e-3f1b2c3d4e5f"))),
    "send_message": (16, message((1, "project"), (2, "agent-1"), (3, b"{}"),
                                 (4, "application/json"))),
    "list_sessions": (17, b""),
    "revoke_session": (18, message((1, "0190f2b4-8c9e-7c3d-9a4e-3f1b2c3d4e5f"))),
    "current_session": (19, b""),
    "resolved_app": (20, APP),
    "cloud_invoke": (21, json.dumps({"nexus": {
        "protocol": 1, "deployment": DIGEST, "namespace": "project", "method": "POST",
        "uri": "/a?b=c", "prefix": "", "headers": [["content-type", "text/plain"]],
        "body": "aGVsbG8=", "client": "10.0.0.1:4242", "agent": "agent-1"}}).encode()),
}


def tar_upload():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        files = [("./spin.toml", MANIFEST), ("./app.wasm", b"\0asm\x01\0\0\0"),
                 ("./sub/other.wasm", b"\0asm\x01\0\0\0other")]
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def multipart_upload():
    manifest = (b'spin_manifest_version = 2\n[application]\nname = "m"\n[[trigger.http]]\n'
                b'route = "/..."\ncomponent = "m"\n[component.m]\nsource = "m.wasm"\n')
    parts = [("spin.toml", manifest), ("m.wasm", b"\0asm\x01\0\0\0")]
    body = b""
    for name, data in parts:
        body += (b"--nexusfuzz\r\nContent-Disposition: form-data; name=\"" + name.encode() +
                 b"\"; filename=\"" + name.encode() + b"\"\r\n\r\n" + data + b"\r\n")
    return body + b"--nexusfuzz--\r\n"


def js(value):
    return json.dumps(value).encode()


# Selectors: `DECODERS` in coordinator/src/api/fuzzing.rs.
REST = {
    "trigger_path": (0, b"/shop/checkout@canary/cart/items?id=1"),
    "trigger_path_live": (0, b"/shop/checkout"),
    "deploy_tar": (1, b"\0" + tar_upload()),
    "deploy_multipart": (1, b"\1" + multipart_upload()),
    "deploy_component": (1, b"\2\0asm\x01\0\0\0"),
    "function_change": (2, js({"priority": "high", "placement": "auto",
                               "node_selector": {"gpu": "true", "example.com/zone": "eu-1"},
                               "async_retry": {"max_attempts": 3, "max_age_ms": 60000,
                                               "backoff_ms": 1000}})),
    "alias_change": (3, js({"version": 2, "canary": {"version": 3, "weight": 10}})),
    "invoke": (4, js({"function": "hello", "alias": "live", "mode": "async", "method": "PUT",
                      "path": "/a?b=c", "headers": {"x-a": "1"}, "body_base64": "aGk=",
                      "idempotency_key": "order-42"})),
    "dead_letters": (5, js({"function": "f", "ids": ["0190f2b4-8c9e-7c3d-9a4e-3f1b2c3d4e5f"]})),
    "schedule_cron": (6, js({"name": "nightly", "function": "f", "cron": "0 */5 * * * *",
                             "method": "POST", "path": "/run", "body": "go"})),
    "schedule_at": (6, js({"name": "once", "function": "f", "agent": "a",
                           "at": "2030-01-01T00:00:00Z"})),
    "schedule_after": (6, js({"name": "soon", "function": "f", "after_ms": 1000})),
    "new_agent": (7, js({"name": "agent-1", "function": "f", "alias": "live",
                         "context": {"k": "v"}})),
    "register": (8, js({"email": "a@example.com", "display_name": "A", "password": "pw"})),
    "login": (9, js({"email": "a@example.com", "password": "pw"})),
    "refresh": (10, js({"refresh_token": "nxr_abc"})),
    "new_key": (11, js({"name": "ci", "role": "developer"})),
    "new_project": (12, js({"name": "shop", "display_name": "Shop"})),
    "project_change": (13, js({"display_name": "Shop"})),
    "new_member": (14, js({"email": "b@example.com", "role": "viewer"})),
    "role_change": (15, js({"role": "admin"})),
    "query": (16, b"project=shop&type=agent_created,guest_log&function=f&agent=a&after=1-0"
                  b"&alias=none&limit=10&store=default&ttl_ms=5000&status=dead&before=x"
                  b"&path=/a&access_token=t"),
    "conditional_headers": (17, b"\"0123abcd\"\0\0respond-async; wait=5"),
    "if_none_match": (17, b"\0*\0"),
}


def write(target, seeds):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    for name, (selector, data) in seeds.items():
        prefix = b"" if selector is None else bytes([selector])
        (directory / f"seed-{name}").write_bytes(prefix + data)


def main():
    repo = HERE.parent
    write("spin_manifest", {
        "functions": (None, (repo / "functions" / "spin.toml").read_bytes()),
        "seed": (None, MANIFEST),
        "component": (None, b'spin_manifest_version = 2\n\n[application]\nname = "f"\n\n'
                            b'[[trigger.http]]\nroute = "/..."\ncomponent = "f"\n\n'
                            b'[component.f]\nsource = "app.wasm"\n'),
    })
    write("rest_requests", REST)
    write("proto_messages", PROTO)


if __name__ == "__main__":
    main()
