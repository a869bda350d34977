"""Offline by construction: the whole pipeline runs with every non-loopback socket blocked."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

from assistant.offline import OFFLINE_ENV


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):
        return True  # AF_UNIX paths
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: resolving and dialling it would leave the machine


@pytest.fixture()
def egress_log(monkeypatch):
    """Record and refuse every non-loopback connection, including ones a library would swallow."""
    attempts: list[object] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guard(real):
        def connect(self, address):
            if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
                attempts.append(address)
                raise ConnectionRefusedError(f"test blocked egress to {address}")
            return real(self, address)

        return connect

    monkeypatch.setattr(socket.socket, "connect", guard(real_connect))
    monkeypatch.setattr(socket.socket, "connect_ex", guard(real_connect_ex))
    return attempts


def test_the_suite_blocks_non_loopback_sockets():
    """pytest-socket (--allow-hosts in pyproject) is active for every test."""
    from pytest_socket import SocketConnectBlockedError

    with pytest.warns(UserWarning, match="tried to use socket"), pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("93.184.216.34", 80), timeout=1)


def test_ingest_and_search_make_no_outside_connection(settings, egress_log):
    from assistant.core import Assistant

    a = Assistant(settings)  # built from settings: loads the packaged embedder itself
    report = a.ingest()
    assert report.units == 36
    hits = a.search("my gpu keeps running out of memory")
    assert hits and hits[0].title.startswith("My model training takes too much RAM")
    assert egress_log == []


def test_offline_environment_is_set_at_import():
    import assistant  # noqa: F401

    for key, value in OFFLINE_ENV.items():
        # Gradio rewrites HF_HUB_DISABLE_TELEMETRY to "True" once a Blocks is built without analytics:
        # the same meaning for huggingface_hub, which reads 1/true/yes/on alike.
        same = {value, "True", "true"} if value == "1" else {value}
        assert os.environ[key] in same, (key, os.environ[key])
    import huggingface_hub.constants as hub

    assert hub.HF_HUB_OFFLINE


def test_chroma_collection_has_our_embedding_function(indexed):
    ef = indexed.store.collection._embedding_function
    assert ef is not None and ef.name() == "dl-assistant-sentence-transformer"
