"""`core.errors`: one hierarchy with `retryable`, and the node's errors on it, still caught as
the built-in errors they were."""

from __future__ import annotations

import pickle

import pytest

from agents.base import AgentError as AgentsAgentError
from agents.catalog import SpecError
from agents.mcp import McpFailed
from agents.outcome import OutcomeError
from agents.urlguard import UnsafeUrlError
from config import ConfigError as ConfigConfigError
from control_api.analytics.clickhouse import ClickHouseError
from control_api.analytics.sinks import DeliveryError
from control_api.analytics.summary import TooManyGroups
from control_api.host import DialError
from control_api.refusals import CallRefused, OverCapacity, QuotaExceeded, UnknownRoute
from control_api.store.crypto import SealError, SecretsKeyError
from control_api.store.errors import Conflict, NotFound
from control_api.store.secrets import SecretsUnavailable
from core.errors import (
    AgentError,
    ConfigError,
    EngineError,
    Refused,
    StoreError,
    TransportError,
    VoicenodeError,
)
from media.call import CallControlError
from media.dialplan import DestinationInvalid, DestinationRefused, RateLimited
from media.webrtc_sdp import SdpError
from pipeline.batcher import BatcherClosed
from pipeline.silero_graph import NotSileroV6
from pipeline.stt_engine import SttError
from pipeline.tts import TtsBusy, TtsError
from pipeline.turn_model import TurnModelError
from sip.ami import AmiError, AmiLoginFailed, AmiNotConnected

KINDS = (ConfigError, TransportError, EngineError, AgentError, StoreError, Refused)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_a_voicenode_error_not_retryable_by_default(kind: type) -> None:
    error = kind("what failed")
    assert isinstance(error, VoicenodeError)
    assert error.retryable is False
    assert str(error) == "what failed"


def test_one_error_may_say_otherwise() -> None:
    assert TransportError("lost", retryable=True).retryable is True
    assert TransportError("lost").retryable is False  # the class default is untouched
    error = EngineError("busy")
    error.retryable = True
    assert error.retryable is True and EngineError.retryable is False


def test_retryable_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(StoreError("gone", retryable=True)))
    assert isinstance(error, StoreError) and error.retryable is True and str(error) == "gone"


def test_translated_at_the_boundary_keeps_the_cause() -> None:
    with pytest.raises(TransportError) as caught:
        try:
            raise ConnectionResetError("peer reset")
        except OSError as exc:
            raise TransportError("the PBX went away", retryable=True) from exc
    assert isinstance(caught.value.__cause__, ConnectionResetError)


def test_the_same_class_under_its_old_names() -> None:
    assert ConfigConfigError is ConfigError and issubclass(ConfigError, ValueError)
    assert AgentsAgentError is AgentError and issubclass(AgentError, RuntimeError)


@pytest.mark.parametrize(
    ("error", "kind", "builtin"),
    [
        (SpecError, VoicenodeError, ValueError),
        (OutcomeError, AgentError, RuntimeError),
        (UnsafeUrlError, Refused, ValueError),
        (CallControlError, TransportError, RuntimeError),
        (SdpError, TransportError, ValueError),
        (DestinationInvalid, Refused, ValueError),
        (DestinationRefused, Refused, Exception),
        (AmiError, TransportError, Exception),
        (DialError, TransportError, Exception),
        (Conflict, StoreError, Exception),
        (NotFound, StoreError, LookupError),
        (SecretsUnavailable, StoreError, RuntimeError),
        (SecretsKeyError, StoreError, ValueError),
        (SealError, StoreError, ValueError),
        (CallRefused, Refused, Exception),
    ],
)
def test_the_node_errors_sit_on_the_hierarchy_and_keep_their_bases(
    error: type, kind: type, builtin: type
) -> None:
    assert issubclass(error, kind) and issubclass(error, builtin)


def test_what_says_try_again() -> None:
    assert OutcomeError("late").retryable is True
    assert AmiNotConnected("down").retryable is True
    assert AmiLoginFailed("no").retryable is False
    assert RateLimited(30).retryable is True
    assert DestinationRefused("not allowed").retryable is False
    assert OverCapacity("full", 5).retryable is True
    assert QuotaExceeded("calls_per_minute", 60).retryable is True
    assert UnknownRoute("unknown number").retryable is False
    assert DialError("the PBX is not reachable", 503).retryable is True
    assert DialError("the PBX refused the call", 502).retryable is False
    assert CallControlError("refused", kind="refused").retryable is False


@pytest.mark.parametrize(
    ("error", "kind", "builtin", "retryable"),
    [
        (SttError("decode failed"), EngineError, RuntimeError, True),
        (TtsError("the TTS engine closed"), EngineError, RuntimeError, False),
        (TtsBusy("4 clauses already wait"), EngineError, RuntimeError, True),
        (TurnModelError("the turn model has stopped"), EngineError, RuntimeError, False),
        (BatcherClosed("the engine is closed"), EngineError, RuntimeError, False),
        (NotSileroV6("expected one LSTM"), EngineError, ValueError, False),
        (DeliveryError("http status 503"), TransportError, Exception, True),
        (TooManyGroups("more than 1000 groups"), Refused, ValueError, False),
        (McpFailed("stdio servers are for the operator's agents"), Refused, Exception, False),
    ],
)
def test_the_engines_sinks_and_tools_errors_joined_the_hierarchy(
    error: VoicenodeError, kind: type, builtin: type, retryable: bool
) -> None:
    assert isinstance(error, kind) and isinstance(error, builtin)
    assert error.retryable is retryable


def test_clickhouse_retries_unless_it_refused_the_rows() -> None:
    unreachable = ClickHouseError("clickhouse unreachable: ConnectError")
    assert isinstance(unreachable, TransportError)
    assert not unreachable.refuses_rows and unreachable.retryable is True
    refused = ClickHouseError("Code: 27", code=27, key="duration_s")
    assert refused.refuses_rows and refused.retryable is False
    other = ClickHouseError("Code: 241", code=241)  # memory limit: the server, not the rows
    assert not other.refuses_rows and other.retryable is True
