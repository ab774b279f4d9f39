"""The hub probe (training.hub): bounded in time, name lookup included; shared by the importer and the
launch pre-flight."""
from __future__ import annotations

import socket
import time

import pytest

from training import hub


def test_hub_probe_names_an_unreachable_host(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", "https://hub.invalid")
    monkeypatch.setattr(hub, "HUB_PROBE_TIMEOUT_S", 1.0)
    started = time.monotonic()
    reason = hub.hub_offline_reason()
    assert time.monotonic() - started < 5
    assert "hub.invalid is not reachable" in reason


def test_hub_probe_does_not_wait_for_a_dead_resolver(monkeypatch):
    """A socket timeout does not bound the name lookup; the probe bounds it itself."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "HUB_PROBE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(hub.socket, "getaddrinfo", lambda *a, **k: time.sleep(5))
    started = time.monotonic()
    reason = hub.hub_offline_reason()
    assert time.monotonic() - started < 2
    assert "is not reachable" in reason and "took over 0.5 s" in reason


def test_probe_connects_to_a_listening_host():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        hub.connect_within("127.0.0.1", server.getsockname()[1], 2.0)  # no error
        port = server.getsockname()[1]
    with pytest.raises(OSError):
        hub.connect_within("127.0.0.1", port, 2.0)  # closed now: refused
