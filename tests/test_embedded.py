"""The embedded-server launcher's decisions that need no server to check."""

from pathlib import Path

from embedded_servers import launcher as embedded


def test_a_short_checkout_keeps_the_redis_socket_under_var(monkeypatch, tmp_path):
    monkeypatch.setattr(embedded, "REDIS_DIR", tmp_path / "redis")
    assert embedded._redis_socket() == tmp_path / "redis" / "redis.sock"


def test_a_deep_checkout_moves_the_redis_socket_to_a_short_path(monkeypatch):
    deep = Path("/work") / ("very-long-directory-name-" * 6) / "var" / "redis"
    monkeypatch.setattr(embedded, "REDIS_DIR", deep)
    socket = embedded._redis_socket()
    assert len(str(socket)) <= embedded._SOCKET_LIMIT
    assert socket.name == "redis.sock"
    assert socket == embedded._redis_socket()  # stable, so every process finds it


def test_configured_servers_are_used_as_they_are(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://db.example/sergas")
    monkeypatch.setenv("REDIS_URL", "redis://cache.example/0")
    executed = []
    monkeypatch.setattr(embedded.os, "execvp", lambda *args: executed.append(args))
    embedded.run(["true"])
    assert executed == [("true", ["true"])]
