"""Issue 12 item 10 on the real node: what the model puts in `end_call`'s reason never becomes
a metrics label (a caller who talks the model into unique reasons cannot grow `/metrics` or
write into it); the call ends as `completed`, the reason stays in the tool call's arguments."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.control_api.test_node_secrets import llm_spec
from tests.support.harness import auth
from tests.support.llm_double import LlmDouble, Reply, ScriptedToolCall
from tests.support.served_node import light_node_settings, run_call, served_light_node


async def test_the_end_call_reason_is_not_a_metrics_label(tmp_path: Path) -> None:
    reason = f'pwned-{uuid.uuid4().hex}"}} 1\nvoicenode_fake_metric{{x="1'
    settings = light_node_settings(tmp_path)
    async with LlmDouble() as double, served_light_node(settings) as (node, http):
        created = await http.post(
            "/v1/agents", json={"spec": llm_spec("closer", double)}, headers=auth()
        )
        assert created.status_code == 201, created.text
        double.script(
            Reply(
                tokens=["Goodbye."], tool_calls=[ScriptedToolCall("end_call", {"reason": reason})]
            )
        )
        await run_call(node, "demo", "closer")
        metrics = (await http.get("/metrics", headers=auth())).text
    assert "pwned-" not in metrics and "voicenode_fake_metric" not in metrics
    ended = [
        line
        for line in metrics.splitlines()
        if line.startswith("voicenode_calls_total{") and 'transport="virtual"' in line
    ]
    assert ended and all(
        any(f'outcome="{o}"' in line for o in ("completed", "hangup", "other")) for line in ended
    ), ended
