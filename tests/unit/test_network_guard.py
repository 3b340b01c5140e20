"""The suite itself cannot reach beyond loopback: the guard in conftest refuses it."""

import socket

import httpx
import pytest


def test_a_connection_off_the_machine_is_refused() -> None:
    with socket.socket() as s, pytest.raises(ConnectionRefusedError, match="beyond loopback"):
        s.connect(("192.0.2.1", 443))  # TEST-NET-1: never routable


def test_an_http_client_cannot_reach_the_internet() -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get("http://192.0.2.1/", timeout=2)
