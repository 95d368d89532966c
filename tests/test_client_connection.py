"""Telling a connected HTTP client from one that went away, by its socket."""

import socket

from django.test import RequestFactory

from kernel.client_connection import client_disconnected


def _request(sock: socket.socket):
    request = RequestFactory().post("/api/v1/work/claim")
    request.META["gunicorn.socket"] = sock  # where gunicorn puts the client's socket
    return request


def test_an_open_connection_is_connected_and_a_closed_one_is_not():
    server_side, client_side = socket.socketpair()
    try:
        request = _request(server_side)
        assert not client_disconnected(request)
        client_side.sendall(b"GET / HTTP/1.1\r\n")  # more from the client: still there
        assert not client_disconnected(request)
        client_side.close()
        server_side.recv(100)
        assert client_disconnected(request)
    finally:
        server_side.close()


def test_without_a_socket_the_client_is_presumed_connected():
    assert not client_disconnected(RequestFactory().post("/api/v1/work/claim"))
