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


def test_loopback_is_allowed():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    c = socket.socket()
    c.connect(srv.getsockname())
    c.close()
    srv.close()
