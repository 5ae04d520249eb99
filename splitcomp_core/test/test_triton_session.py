"""TritonSession without a server: a closed port fails fast as triton_down, bad feeds are refused before sending."""

import socket
import time

import numpy as np
import pytest

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed (requirements/python.txt)")

from splitcomp_core.errors import BackendUnavailable, RuntimeSetupError
from splitcomp_core.triton_session import TritonSession


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_is_down_is_triton_down_within_the_timeout():
    session = TritonSession(f"127.0.0.1:{closed_port()}", "tail", timeout_s=1.0)
    assert session.provider.startswith("triton 127.0.0.1:")
    start = time.monotonic()
    with pytest.raises(BackendUnavailable) as caught:
        session.run({"feat": np.zeros((2, 4, 16, 16), np.float32)})
    assert caught.value.reason in ("triton_down", "triton_timeout")
    assert time.monotonic() - start < 1.5
    assert not session.ready()


def test_feeds_without_a_common_batch_are_refused():
    session = TritonSession("127.0.0.1:1", "tail")
    with pytest.raises(BackendUnavailable) as caught:
        session.run({"a": np.zeros((2, 3), np.float32), "b": np.zeros((3, 3), np.float32)})
    assert caught.value.reason == "triton_refused"


def test_a_session_needs_an_address_a_model_and_a_positive_timeout():
    for url, model, timeout in (("", "m", 1.0), ("h:1", "", 1.0), ("h:1", "m", 0.0)):
        with pytest.raises(RuntimeSetupError):
            TritonSession(url, model, timeout)
