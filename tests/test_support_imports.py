"""Shared test support lives in `tests/support/`; a test folder imports from itself and from there.

Every import of every module under `tests/` is read with `ast` (function-local ones too, nothing
is imported). A module in `tests/<folder>/` may import `tests.<folder>.*` and `tests.support.*`;
a module at the top of `tests/` may import the other top-level modules and `tests.support.*`;
`tests/support/` imports only itself. A helper a second folder needs moves to `tests/support/`
(CONTRIBUTING.md, "Where test support lives"), so no test depends on another folder's tests.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final, NamedTuple

TESTS: Final = Path(__file__).resolve().parent
SUPPORT: Final = "support"


class Crossing(NamedTuple):
    path: str
    line: int
    module: str

    def __str__(self) -> str:
        return f"tests/{self.path}:{self.line} imports {self.module}"


def module_name(path: Path, tests: Path) -> str:
    parts = ["tests", *path.relative_to(tests).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def folder_of(module: str, tests: Path) -> str:
    """The test folder a `tests.*` module is in; "" for the modules at the top of `tests/`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (tests / parts[1]).is_dir() else ""


def imported(path: Path, tests: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every `tests.*` name the file imports, relative imports resolved.
    `from a import b` yields `a.b`: `b` may be a module, and `a.b` is in `a`'s folder either way."""
    module = module_name(path, tests)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, base] if base else up)
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "tests" or name.startswith("tests."):
                yield node.lineno, name


def crossings(tests: Path = TESTS) -> list[Crossing]:
    """Every import from a test folder other than the importer's own and `tests/support/`."""
    found: list[Crossing] = []
    for path in sorted(tests.rglob("*.py")):
        own = folder_of(module_name(path, tests), tests)
        for line, name in sorted(imported(path, tests)):
            target = folder_of(name, tests)
            if target != own and target != SUPPORT:
                found.append(Crossing(str(path.relative_to(tests)), line, name))
    return found


def test_test_modules_import_only_their_own_folder_and_tests_support() -> None:
    found = crossings()
    assert not found, "move the helper to tests/support/:\n" + "\n".join(map(str, found))


def test_the_rule_reads_absolute_relative_and_package_imports(tmp_path: Path) -> None:
    files = {
        "support/__init__.py": "",
        "support/ports.py": "",
        "sip/__init__.py": "",
        "sip/sipp.py": "from tests.support.ports import free_port\n",
        "sip/test_a.py": "from . import sipp\nfrom .sipp import run\nimport tests.sip.sipp\n",
        "e2e/__init__.py": "",
        "e2e/kit/__init__.py": "from ..conftest import words\n",
        "e2e/test_b.py": (
            "from tests.sip.sipp import run\n"
            "def f():\n    from ..sip import sipp\n"
            "from tests import sip\n"
        ),
        "graph.py": "",
        "test_top.py": "from tests.graph import x\nfrom tests.support import ports\n",
        "support/bad.py": "from tests.e2e.kit import y\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert [str(c) for c in crossings(tmp_path)] == [
        "tests/e2e/test_b.py:1 imports tests.sip.sipp.run",
        "tests/e2e/test_b.py:3 imports tests.sip.sipp",
        "tests/e2e/test_b.py:4 imports tests.sip",
        "tests/support/bad.py:1 imports tests.e2e.kit.y",
    ]
