"""SplitFeatures crosses real DDS between two processes unchanged, field by field."""

import pathlib
import pickle
import subprocess
import sys

import pytest

PEER = pathlib.Path(__file__).with_name("dds_peer.py")


@pytest.fixture
def peer_module():
    sys.path.insert(0, str(PEER.parent))
    import dds_peer

    yield dds_peer
    sys.path.remove(str(PEER.parent))


def test_split_features_cross_process(tmp_path, peer_module):
    out = tmp_path / "received.pkl"
    listener = subprocess.Popen([sys.executable, str(PEER), "listen", str(out)])
    talker = subprocess.Popen([sys.executable, str(PEER), "talk"])
    try:
        assert listener.wait(timeout=60) == 0
    finally:
        talker.terminate()
        talker.wait(timeout=10)
    received = pickle.loads(out.read_bytes())
    assert received is not None, "no message arrived over DDS within 30 s"
    expected = peer_module.to_plain(peer_module.reference_message())
    assert received.keys() == expected.keys()
    for field in expected:
        assert received[field] == expected[field], field
    assert len(received["tensors"][0]["data"]) == 200_000
