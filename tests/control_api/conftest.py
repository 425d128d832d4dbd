from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from tests.support.harness import Node, serve_node
from tests.support.host import FakeHost
from tests.support.webrtc_peer import read_wav_16k, speech_wav


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    async with serve_node(FakeHost(max_calls=2)) as n:
        yield n


@pytest.fixture(scope="session")
def utterance_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("speech") / "utterance.wav"
    return speech_wav(path, "Hello, I would like to book a table for two tonight, please.")


@pytest.fixture(scope="session")
def utterance(utterance_wav: Path) -> npt.NDArray[np.int16]:
    return read_wav_16k(utterance_wav)
