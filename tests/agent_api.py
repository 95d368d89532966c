"""A JSON test client holding one agent token, for the API tests."""

import json
from typing import Any

from django.test import Client

from access.models import AgentToken
from access.services import agent_token_create


class AgentApi:
    """``api.post("/sessions", {...})`` against ``/api/v1`` with the token's bearer header."""

    def __init__(self, client: Client, secret: str | None, token: AgentToken | None) -> None:
        self.client = client
        self.secret = secret
        self.token = token

    @classmethod
    def issue(
        cls, client: Client, *scopes: str, name: str = "test-agent", queues: tuple = ()
    ) -> "AgentApi":
        issued = agent_token_create(name=name, scopes=scopes or ("write",), queues=queues)
        return cls(client, issued.secret, issued.token)

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.secret}"} if self.secret else {}
        headers.update({f"HTTP_{name.upper().replace('-', '_')}": v for name, v in extra.items()})
        return headers

    def get(self, path: str, params: dict | None = None, **headers: str) -> Any:
        return self.client.get(f"/api/v1{path}", params or {}, **self.headers(**headers))

    def post(self, path: str, body: Any = None, **headers: str) -> Any:
        return self._send("post", path, body, headers)

    def patch(self, path: str, body: Any = None, **headers: str) -> Any:
        return self._send("patch", path, body, headers)

    def delete(self, path: str, **headers: str) -> Any:
        return self.client.delete(f"/api/v1{path}", **self.headers(**headers))

    def _send(self, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
        data = "" if body is None else json.dumps(body)
        return getattr(self.client, method)(
            f"/api/v1{path}", data, content_type="application/json", **self.headers(**headers)
        )
