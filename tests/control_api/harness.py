"""Moved to `tests.support.harness`. This alias stays only until the tests written while it
moved import from there; `tests/test_support_imports.py` names them. Do not import it."""

from tests.support.harness import (
    ADMIN_KEY,
    Node,
    RealNode,
    auth,
    node_settings,
    real_node_settings,
    serve_app,
    serve_node,
    serve_real_node,
)

__all__ = [
    "ADMIN_KEY",
    "Node",
    "RealNode",
    "auth",
    "node_settings",
    "real_node_settings",
    "serve_app",
    "serve_node",
    "serve_real_node",
]
