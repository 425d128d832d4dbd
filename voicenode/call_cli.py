"""`voicenode call TARGET --agent NAME`: ask a running node to place an outbound call.

It posts `POST /v1/calls` to the node's API (`--url`, default the configured `http.host` and
`http.port`) with the admin key (`VOICENODE_ADMIN_KEY`, else `http.admin_key`), prints the
call id and exits 0; errors print the API's message and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys

import httpx
import msgspec

from config import Settings


def run_call(settings: Settings, args: argparse.Namespace) -> int:
    key = os.environ.get("VOICENODE_ADMIN_KEY") or settings.http.admin_key
    if not key:
        print("voicenode call: set VOICENODE_ADMIN_KEY (or http.admin_key)", file=sys.stderr)
        return 2
    host = settings.http.host if settings.http.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = (args.url or f"http://{host}:{settings.http.port}").rstrip("/")
    body: dict[str, str] = {"agent": args.agent or settings.agents.default, "to": args.target}
    body["via"] = args.via
    if args.tenant:
        body["tenant"] = args.tenant
    try:
        response = httpx.post(
            f"{url}/v1/calls",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        print(f"voicenode call: cannot reach the node at {url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 201:
        try:
            detail = msgspec.json.decode(response.content).get("detail", response.text)
        except msgspec.DecodeError:
            detail = response.text
        print(f"voicenode call: {response.status_code}: {detail}", file=sys.stderr)
        return 1
    print(msgspec.json.decode(response.content)["call_id"])
    return 0
