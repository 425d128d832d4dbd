"""`voicenode agents diff|apply [--dir DIR]`: what reconciling the agent files with the
configured store would change, and doing it, without starting a node.

`diff` prints one line per agent that would change (and per refused file) and changes nothing;
`apply` seeds an empty store, reconciles and prints what it did. Exit status: 0, or 2 when a
file was refused or the configuration is invalid (`apply` still applies the valid files).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TextIO

from config import ConfigError, Settings
from control_api.agent_files import Plan, Step
from control_api.store.file_agents import reconcile
from control_api.store.seed import agent_files, plain_store, seed

log = logging.getLogger(__name__)


def describe(step: Step) -> str:
    """One human-readable line for a step."""
    fields = f" ({', '.join(step.fields)})" if step.fields else ""
    match step.action:
        case "create":
            return f"+ {step.agent}: new agent from {step.path}"
        case "update":
            over = f"; overwrites API version {step.overwrites}" if step.overwrites else ""
            return f"~ {step.agent}: v{step.version} -> new version{fields}{over}"
        case "kept-api":
            return f"= {step.agent}: file changed{fields}, API version v{step.version} kept"
        case "refused":
            return f"! {step.agent or step.path}: refused: {step.error}"
        case "removed":
            return f"- {step.agent}: file removed, v{step.version} left as it is"
        case _:
            return f"  {step.agent}: unchanged (v{step.version})"


async def _run(settings: Settings, action: str, folder: str | None) -> Plan:
    found, refused = await asyncio.to_thread(agent_files, settings, folder)
    async with plain_store(settings) as store:
        if action == "apply":
            await seed(store, {f.name: f.text for f in found}, settings.agents.default)
        conflict = settings.agents.file_conflict
        return await reconcile(store, found, refused, conflict, apply=action == "apply")


def run_agents(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        plan = asyncio.run(_run(settings, args.action, args.dir))
    except ConfigError as exc:
        print(f"voicenode: configuration error: {exc}", file=sys.stderr)
        return 2
    changes = [s for s in plan.steps if s.action != "unchanged"]
    for step in changes:
        print(describe(step), file=out)
    if not changes:
        print("agent files and store agree", file=out)
    return 2 if plan.refused else 0
