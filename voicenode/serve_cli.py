"""`voicenode serve` from the command line: the node, reloadable from the same configuration
(the `--config` file and the environment) it started with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from config import ConfigError, Settings, load_settings
from control_api.host import CallHost
from voicenode.console import captured_stdout
from voicenode.logs import json_mode


@asynccontextmanager
async def open_quiet_node(settings: Settings) -> AsyncIterator[CallHost]:
    """The node (`open_node`); in JSON mode what native libraries print to stdout while it
    starts (pjlib, before its log writer is in) is logged as records instead."""
    from voicenode.node import open_node

    async with AsyncExitStack() as stack:
        with captured_stdout(json_mode()):
            node = await stack.enter_async_context(open_node(settings))
        yield node


def run_serve(settings: Settings, config_path: str | None) -> int:
    """Serve until stopped; 2 on a configuration error found at start, 1 when the HTTP
    address cannot be bound."""
    from voicenode.serve import main_serve

    def load() -> Settings:
        return load_settings(config_path)

    try:
        return main_serve(settings, open_quiet_node, load=load)
    except ConfigError as exc:  # a setting only checkable at start (a TLS file, a bad agent file)
        print(f"voicenode: configuration error: {exc}")
        return 2
    except OSError as exc:
        print(f"voicenode: cannot serve on {settings.http.host}:{settings.http.port}: {exc}")
        return 1
