import socket

import pytest


def test_outside_connection_is_blocked():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(RuntimeError, match="must not reach the network"):
        s.connect(("93.184.216.34", 80))
    s.close()


def test_outside_name_resolution_is_blocked():
    import requests

    with pytest.raises(Exception, match="must not"):
        requests.get("https://www.numbeo.com/", timeout=2)


def test_loopback_is_allowed_while_the_guard_is_on():
    with socket.socket() as outside, pytest.raises(RuntimeError, match="must not reach the network"):
        outside.connect(("93.184.216.34", 80))  # the guard is on...
    srv = socket.create_server(("127.0.0.1", 0))  # ...and lets loopback through, both ways
    with srv, socket.create_connection(srv.getsockname(), timeout=5) as client:
        conn, _ = srv.accept()
        with conn:
            client.sendall(b"ping")
            assert conn.recv(4) == b"ping"
