"""The OpenAPI document against what the routes answer to the keys the fuzz (platform admin)
does not use: no key (401, with the `WWW-Authenticate` it documents), a viewer key of the demo
tenant acting for another tenant (403), too many wrong keys (429, with `Retry-After`); every
error response is the `ApiError` component; the agent bodies' "exactly one of `spec` and
`toml`" is in the document as the route checks it; `/metrics` names its charset once."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import msgspec
import pytest

from control_api.api_errors import ApiError
from control_api.store.seed import file_specs
from tests.support.harness import auth, node_settings, serve_node
from tests.support.host import FakeHost

ERROR = {"$ref": "#/components/schemas/ApiError"}
RECEPTIONIST = file_specs()["receptionist"]


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in doc["paths"].items()
        if path.startswith("/v1/")
        for method, op in item.items()
    ]


def _check(doc: dict[str, Any], op: dict[str, Any], status: int, body: Any, where: str) -> None:
    documented = op["responses"]
    assert str(status) in documented, f"{where}: {status} is not documented"
    schema = documented[str(status)]["content"]["application/json"]["schema"]
    assert schema == ERROR, where
    msgspec.convert(body, ApiError, strict=True)  # the Struct the component is made from
    assert body["status_code"] == status, where


async def test_refusals_are_documented() -> None:
    async with serve_node(FakeHost()) as node:
        doc = (await node.http.get("/schema/openapi.json")).json()
        resp = await node.http.post("/v1/keys", json={"role": "viewer"}, headers=auth())
        viewer = {"Authorization": f"Bearer {resp.json()['key']}"}
        operations = _operations(doc)
        assert len(operations) >= 25
        for method, path, op in operations:
            for code, op_resp in op["responses"].items():
                if int(code) >= 400:
                    assert op_resp["content"]["application/json"]["schema"] == ERROR
            resp = await node.http.request(method, _url(path), json={})
            _check(doc, op, resp.status_code, resp.json(), f"{method} {path} without a key")
            assert resp.status_code == 401
            assert resp.headers["www-authenticate"] == 'Bearer realm="voicenode"'
            challenge = op["responses"]["401"]["headers"]["WWW-Authenticate"]
            assert challenge["required"] and challenge["schema"] == {"type": "string"}
            resp = await node.http.request(
                method, _url(path), params={"tenant": "acme"}, json={}, headers=viewer
            )
            if resp.status_code >= 400:
                _check(doc, op, resp.status_code, resp.json(), f"{method} {path} as a viewer")


async def test_metrics_names_its_charset_once() -> None:
    async with serve_node(FakeHost()) as node:
        resp = await node.http.get("/metrics")
        assert resp.status_code == 200
        assert resp.headers["content-type"].count("charset") == 1
        assert resp.headers["content-type"].startswith("text/plain; version=")
        doc = (await node.http.get("/schema/openapi.json")).json()
        (documented,) = doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
        assert documented == resp.headers["content-type"]


async def test_too_many_wrong_keys_is_a_documented_429_with_retry_after() -> None:
    settings = node_settings()
    settings = msgspec.structs.replace(
        settings, http=msgspec.structs.replace(settings.http, auth_failures_max=2)
    )
    async with serve_node(FakeHost(), settings) as node:
        doc = (await node.http.get("/schema/openapi.json")).json()
        op = doc["paths"]["/v1/agents"]["get"]
        wrong = auth("not-a-key-0123456789")
        statuses = [(await node.http.get("/v1/agents", headers=wrong)).status_code for _ in "ab"]
        assert statuses == [401, 401]
        resp = await node.http.get("/v1/agents", headers=auth())  # even a good key, from here
        _check(doc, op, resp.status_code, resp.json(), "GET /v1/agents after 2 wrong keys")
        assert resp.status_code == 429
        assert 1 <= int(resp.headers["retry-after"]) <= 60  # the window: 60 s
        documented = op["responses"]["429"]["headers"]["Retry-After"]
        assert documented["required"] and documented["schema"]["type"] == "integer"


async def test_retry_after_on_503_is_documented_where_a_refused_call_sends_it() -> None:
    async with serve_node(FakeHost()) as node:
        doc = (await node.http.get("/schema/openapi.json")).json()
    for path in ("/v1/calls", "/v1/webrtc/offer"):  # a full, loading or draining node
        header = doc["paths"][path]["post"]["responses"]["503"]["headers"]["Retry-After"]
        assert header["required"] is False and header["schema"]["type"] == "integer"
    assert "headers" not in doc["paths"]["/v1/secrets"]["post"]["responses"]["503"]


@pytest.mark.parametrize(
    ("path", "method"), [("/v1/agents", "post"), ("/v1/agents/receptionist", "put")]
)
async def test_the_agent_body_documents_exactly_one_of_spec_and_toml(
    path: str, method: str
) -> None:
    async with serve_node(FakeHost()) as node:
        doc = (await node.http.get("/schema/openapi.json")).json()
        body = doc["paths"][path.replace("receptionist", "{name}")][method]["requestBody"]
        schema = {**body["content"]["application/json"]["schema"], "components": doc["components"]}
        validator = jsonschema_rs.Draft202012Validator(schema)
        toml = RECEPTIONIST.replace('name = "receptionist"', 'name = "twin"', 1)
        toml = toml if method == "post" else RECEPTIONIST
        refused: list[dict[str, Any]] = [
            {},
            {"spec": None, "toml": None},
            {"toml": toml, "spec": {"name": "twin"}},
        ]
        for data in refused:
            assert not validator.is_valid(data), data
            resp = await node.http.request(method, path, json=data, headers=auth())
            assert resp.status_code == 400, resp.text
            assert "give exactly one of `spec` (JSON object) and `toml`" in resp.json()["detail"]
        data = {"toml": toml, "spec": None}
        assert validator.is_valid(data)
        resp = await node.http.request(method, path, json=data, headers=auth())
        assert resp.status_code in (200, 201), resp.text
