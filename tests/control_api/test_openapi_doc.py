"""The OpenAPI document against what the routes answer to the keys the fuzz (platform admin)
does not use: no key (401), a viewer key of the demo tenant acting for another tenant (403);
every error response is the `ApiError` component; `/metrics` names its charset once."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from control_api.api_errors import ApiError
from tests.control_api.fakes import FakeHost
from tests.control_api.harness import auth, serve_node

ERROR = {"$ref": "#/components/schemas/ApiError"}


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
