"""Imports among the first-party packages: no cycle between modules, and packages depend on each
other only in the direction docs/architecture.md states ("Dependency direction").

The graph is read from the source (`tests/import_graph.py`, `ast`, nothing imported) and counts
every import: top-level, under `if TYPE_CHECKING:` and inside functions. What breaks a rule today
and cannot be fixed where the break is found is listed below, each with its reason, so that any
new cycle or wrong-way import fails here. When one is fixed, its entry must go (a test checks
that every entry still exists).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Final

from tests.import_graph import (
    PACKAGES,
    ROOT,
    Graph,
    build_graph,
    cycle_in,
    package_of,
    strongly_connected,
)

MAY_IMPORT: Final[dict[str, frozenset[str]]] = {
    # docs/architecture.md, "Dependency direction":
    #   core ← everything (core imports nothing first-party)
    #   config ← media ← sip          config ← agents          media + agents ← pipeline
    #   pipeline + agents ← control_api          everything ← voicenode
    #   bench talks to a node only over the wire (it may import media codecs)
    # An import may point down these arrows, also more than one step (pipeline → config).
    "core": frozenset(),
    "config": frozenset({"core"}),
    "media": frozenset({"core", "config"}),
    "sip": frozenset({"core", "config", "media"}),
    "agents": frozenset({"core", "config"}),
    "pipeline": frozenset({"core", "config", "media", "agents"}),
    "control_api": frozenset({"core", "config", "media", "agents", "pipeline"}),
    "voicenode": frozenset({"core", "config", "media", "sip", "agents", "pipeline", "control_api"}),
    "bench": frozenset({"core", "config", "media"}),
}

_BENCH_TURNS = (
    "the turns bench and its turn-taking set (issue 16) run the node's pipeline in process, in "
    "real time, by design: voicenode.simulate on the node's engines and agent specs, the "
    "caller voice on the engine's Piper voice (docs/architecture.md: 'Some benches run node "
    "code in process')"
)
_BENCH_SIP = (
    "the SIP media benchmark drives the pjsua2 user agent in process to measure its media CPU "
    "(docs/architecture.md: 'Some benches run node code in process')"
)
_BENCH_SIP_PHONE = (
    "the wire bench's SIP caller is a pjsua2 phone on the node's pjsua2 plumbing (its one "
    "owned thread, codec ids, call operations); the node it calls runs in another process "
    "(docs/architecture.md: 'Some benches run node code in process')"
)

_BENCH_ENGINES = (
    "the understanding bench drives the node's recogniser, synthesiser and flow matcher alone "
    "(no call path) to measure word errors and intents (issue 22)"
)

_BENCH_ENGINES_ALONE = (
    "the engines bench drives the node's STT, TTS and VAD engines alone, in process, with "
    "synthetic talking streams to measure streams per device (issue 21, GPU)"
)

_BENCH_SINK = (
    "the analytics bench pushes its calls through the node's own ClickHouse sink (events, call "
    "records in the SQL store, batched inserts) and times the node's summary query, to measure "
    "that code and not a copy of it (issue 23)"
)

_BENCH_AMD = (
    "the answering-machine bench places outbound calls through the node's own CallSession "
    "(its screening and detector) on the node's engines, on a virtual clock, to measure "
    "decisions in stream time (issue 17)"
)

WRONG_WAY: Final[dict[tuple[str, str], str]] = {
    # importer → imported: why it is allowed for now
    ("bench.turns", "agents.catalog"): _BENCH_TURNS + "; the scenario's agent spec",
    ("bench.turns", "pipeline.engines"): _BENCH_TURNS,
    ("bench.turns", "pipeline.tts"): _BENCH_TURNS + "; the caller voice on the TtsEngine's",
    ("bench.turns", "voicenode.simulate"): _BENCH_TURNS,
    ("bench.sip_media_node", "sip.calls"): _BENCH_SIP,
    ("bench.sip_media_node", "sip.endpoint"): _BENCH_SIP,
    ("bench.sip_media_node", "sip.lifetime"): _BENCH_SIP,
    ("bench.sip_media_node", "sip.media_port"): _BENCH_SIP,
    ("bench.sip_media_node", "sip.ua"): _BENCH_SIP,
    ("bench.sip_media_node", "sip.vector"): _BENCH_SIP,
    ("bench.wire.sip_phone", "sip.pjcall"): _BENCH_SIP_PHONE,
    ("bench.wire.sip_phone", "sip.thread"): _BENCH_SIP_PHONE,
    ("bench.wire.sip_phone", "sip.endpoint"): _BENCH_SIP_PHONE,
    ("bench.understanding", "agents.base"): _BENCH_ENGINES,
    ("bench.understanding", "agents.catalog"): _BENCH_ENGINES,
    ("bench.understanding", "agents.flow.agent"): _BENCH_ENGINES,
    ("bench.understanding", "agents.flow.digits"): _BENCH_ENGINES,
    ("bench.understanding", "agents.flow.ending"): _BENCH_ENGINES,
    ("bench.understanding", "agents.flow.intents"): _BENCH_ENGINES,
    ("bench.understanding", "agents.flow.slots"): _BENCH_ENGINES,
    ("bench.understanding", "agents.flow.spec"): _BENCH_ENGINES,
    ("bench.understanding", "agents.words.text"): _BENCH_ENGINES,
    ("bench.understanding", "agents.spec"): _BENCH_ENGINES,
    ("bench.understanding", "agents.vocabulary"): _BENCH_ENGINES,
    ("bench.understanding", "pipeline.stt"): _BENCH_ENGINES,
    ("bench.understanding", "pipeline.tts"): _BENCH_ENGINES,
    ("bench.understanding_score", "agents.flow.digits"): _BENCH_ENGINES,
    ("bench.understanding_score", "agents.words.text"): _BENCH_ENGINES,
    ("bench.analytics", "control_api.analytics.chsink"): _BENCH_SINK,
    ("bench.analytics", "control_api.analytics.clickhouse"): _BENCH_SINK,
    ("bench.analytics", "control_api.analytics.sinks"): _BENCH_SINK,
    ("bench.analytics", "control_api.analytics.summary"): _BENCH_SINK,
    ("bench.analytics", "control_api.analytics.tables"): _BENCH_SINK,
    ("bench.analytics", "control_api.store"): _BENCH_SINK + "; the call records it reads",
    ("bench.analytics_data", "agents.outcome"): _BENCH_SINK + "; a call.ended event's outcome",
    ("bench.analytics_data", "control_api.analytics.events"): _BENCH_SINK,
    ("bench.analytics_data", "control_api.analytics.outbox"): (
        _BENCH_SINK + "; its outbox rows and call records are made by the node's own builders"
    ),
    ("bench.analytics_data", "control_api.analytics.tables"): _BENCH_SINK,
    ("bench.amd", "agents.fake"): _BENCH_AMD + "; the agent that greets a person",
    ("bench.amd", "agents.spec"): _BENCH_AMD + "; the agent's [amd] settings",
    ("bench.amd", "pipeline.engines"): _BENCH_AMD,
    ("bench.amd", "pipeline.events"): _BENCH_AMD + "; the call.amd decision it reads",
    ("bench.amd", "pipeline.session"): _BENCH_AMD,
    ("bench.amd_cli", "pipeline.engines"): _BENCH_AMD + "; it loads them",
    ("bench.engines", "pipeline.engines"): _BENCH_ENGINES_ALONE,
    ("bench.engines", "pipeline.stt"): _BENCH_ENGINES_ALONE,
    ("bench.engines", "pipeline.stt_engine"): _BENCH_ENGINES_ALONE,
    ("bench.engines", "pipeline.tts"): _BENCH_ENGINES_ALONE,
    ("bench.engines", "pipeline.vad"): _BENCH_ENGINES_ALONE,
    ("bench.engines_cli", "pipeline.devices"): _BENCH_ENGINES_ALONE + "; it reports DeviceError",
}

CYCLE_EDGES: Final[dict[tuple[str, str], str]] = {
    # importer → imported: an edge left out of the cycle check, and why (none today)
}


def _describe(graph: Graph, components: list[list[str]]) -> str:
    return "\n".join(
        " → ".join(cycle_in(graph, c)) + (f"  (tangled: {', '.join(c)})" if len(c) > 2 else "")
        for c in components
    )


def test_no_import_cycle_among_first_party_modules() -> None:
    graph = build_graph()
    checked = {m: frozenset(t for t in ts if (m, t) not in CYCLE_EDGES) for m, ts in graph.items()}
    cycles = strongly_connected(checked)
    assert not cycles, (
        "import cycles (TYPE_CHECKING and function-local imports count):\n"
        + _describe(checked, cycles)
        + "\nMove the shared names to the module that owns them; see docs/architecture.md."
    )


def test_packages_import_only_in_the_documented_direction() -> None:
    graph = build_graph()
    wrong = sorted(
        (module, target)
        for module, targets in graph.items()
        for target in targets
        if package_of(target) != package_of(module)
        and package_of(target) not in MAY_IMPORT[package_of(module)]
        and (module, target) not in WRONG_WAY
    )
    assert not wrong, "imports against the dependency direction (docs/architecture.md):\n" + (
        "\n".join(f"{m} → {t}" for m, t in wrong)
    )


def test_every_allow_listed_import_still_exists() -> None:
    graph = build_graph()
    fixed = sorted(e for e in [*WRONG_WAY, *CYCLE_EDGES] if e[1] not in graph.get(e[0], ()))
    assert not fixed, f"fixed, so remove them from the allow-lists here: {fixed}"


def test_the_table_covers_the_packages_pyproject_builds() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    built = {name.rstrip("*") for name in include}
    assert built == set(PACKAGES) == set(MAY_IMPORT)


# ---- the graph reader itself, on a small tree ----


def _tree(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_hidden_imports_count(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "a/__init__.py": "",
            "a/x.py": "import typing\nif typing.TYPE_CHECKING:\n    from b.y import Y\n",
            "b/__init__.py": "",
            "b/y.py": "def f():\n    from a import x\n    return x\n",
            "b/z.py": "from . import y\nfrom .y import f\nimport a.x as ax\nimport os\n",
        },
    )
    graph = build_graph(tmp_path, ("a", "b"))
    assert graph["a.x"] == {"b.y"}  # under TYPE_CHECKING
    assert graph["b.y"] == {"a.x"}  # function-local, `from package import module`
    assert graph["b.z"] == {"b.y", "a.x"}  # relative imports resolved; stdlib ignored
    cycles = strongly_connected(graph)
    assert cycles == [["a.x", "b.y"]]
    assert cycle_in(graph, cycles[0]) == ["a.x", "b.y", "a.x"]


def test_a_name_from_a_package_points_at_its_init(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            "a/__init__.py": "from a.sub.m import Thing\n",
            "a/sub/__init__.py": "",
            "a/sub/m.py": "from a import helper\nfrom ..sub import m as again\n",
        },
    )
    graph = build_graph(tmp_path, ("a",))
    assert graph["a.sub.m"] == {"a"}  # `helper` is a name in a/__init__.py; itself is dropped
    assert strongly_connected(graph) == [["a", "a.sub.m"]]
