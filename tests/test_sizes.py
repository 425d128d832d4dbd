"""Sizes (issue 13): no first-party module over 400 lines, no function over 60 lines.

Read from the source with `ast` (nothing is imported), over the packages `tests/import_graph.py`
lists (`PACKAGES`); tests are outside the rule. A module's size is its number of lines; a
function's runs from its `def` line to the last line of its body (decorators not counted),
nested functions and methods each counted on their own as well as inside the one around them.
What is still over is listed below, each with its reason, so that anything new over a limit
fails here. When one is split, its entry must go (a test checks that every entry is still over).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from tests.import_graph import PACKAGES, ROOT

MAX_MODULE_LINES: Final = 400
MAX_FUNCTION_LINES: Final = 60

OVER: Final[dict[str, str]] = {
    # "path" (a module) or "path::qualified.name" (a function): why it is still over
}


def _is_test(path: Path) -> bool:
    return path.name.startswith("test_") or "tests" in path.relative_to(ROOT).parts


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, int]]:
    """(qualified name, lines) of every function and method under `tree`, nested ones too."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            assert node.end_lineno is not None
            yield name, node.end_lineno - node.lineno + 1
            yield from _functions(node, f"{name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def sizes_over(source: str, where: str, module_limit: int = MAX_MODULE_LINES) -> dict[str, int]:
    """What in one module's `source` is over a limit: `where` (the module) and
    `where::name` (a function), each with its number of lines."""
    over: dict[str, int] = {}
    lines = len(source.splitlines())
    if lines > module_limit:
        over[where] = lines
    for name, length in _functions(ast.parse(source)):
        if length > MAX_FUNCTION_LINES:
            over[f"{where}::{name}"] = length
    return over


def first_party_over() -> dict[str, int]:
    over: dict[str, int] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if not _is_test(path):
                where = path.relative_to(ROOT).as_posix()
                over |= sizes_over(path.read_text(encoding="utf-8"), where)
    return over


def test_the_measure_counts_def_to_end_of_body_for_every_function() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(60))
    source = (
        "import functools\n\n\n"
        f"@functools.cache\ndef long() -> None:\n{body}\n\n"  # 61 lines: the decorator not counted
        f"def fits() -> None:\n{body[: body.index('    x59')]}\n\n"  # 60 lines: within
        "class C:\n"
        "    async def method(self) -> None:\n"
        "        def inner() -> None:\n"
        + "".join(f"            y{i} = {i}\n" for i in range(60))
        + "        inner()\n"
    )
    over = sizes_over(source, "m.py", module_limit=100)
    assert over == {
        "m.py": len(source.splitlines()),
        "m.py::long": 61,
        "m.py::C.method": 63,
        "m.py::C.method.inner": 61,
    }


def test_no_module_or_function_over_the_limits() -> None:
    new = {k: v for k, v in first_party_over().items() if k not in OVER}
    assert not new, (
        f"over {MAX_MODULE_LINES} lines a module or {MAX_FUNCTION_LINES} a function "
        f"(split it, or list it in OVER with the reason): {new}"
    )


def test_every_listed_entry_is_still_over_and_says_why() -> None:
    over = first_party_over()
    fixed = sorted(k for k in OVER if k not in over)
    assert not fixed, f"within the limits now: take these out of OVER: {fixed}"
    assert all(reason.strip() for reason in OVER.values())
