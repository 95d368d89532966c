"""Who is calling the API: agent bearer tokens, or a staff member's browser session.

Each operation declares the scope it needs (``ApiAuth(TokenScope.WRITE)``); the auth
callable authenticates, checks the scope and hands the handler a ``Principal`` as
``request.auth``. Failures raise domain errors, which the API maps to 401/403. An
address with too many failed tokens in the current window is refused (429) before the
token is looked up (``agents.failures``).
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from agents import failures
from agents.addresses import client_address
from agents.exceptions import (
    CredentialsMissing,
    InvalidToken,
    ScopeMissing,
    StaffReadOnly,
    TokenConfined,
    TokenRevoked,
)
from agents.models import AgentToken, TokenScope
from agents.services import (
    agent_token_authenticate,
    api_authentication_failure_record,
    api_refusal_record,
    token_prefix_of,
)
from sergas.errors import DomainError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Principal:
    """The caller: ``actor`` is what the audit trail records for its writes."""

    name: str
    actor: str
    scopes: frozenset[str]
    throttle_key: str
    token: AgentToken | None = None
    read_only: bool = False
    # Set for tokens confined to their own sessions: the ``created_by`` they may see.
    sessions_owner: str | None = None
    # The work queues the token may take from (empty: any).
    queues: tuple[str, ...] = ()

    @classmethod
    def for_token(cls, token: AgentToken) -> "Principal":
        return cls(
            name=token.name,
            actor=token.actor,
            scopes=token.effective_scopes,
            throttle_key=f"token:{token.prefix}",
            token=token,
            sessions_owner=token.sessions_owner,
            queues=tuple(token.queues),
        )

    @classmethod
    def for_staff(cls, request: HttpRequest) -> "Principal | None":
        user = getattr(request, "user", None)
        if user is None or not (user.is_authenticated and user.is_active and user.is_staff):
            return None
        return cls(
            name=user.get_username(),
            actor=f"staff:{user.get_username()}",
            scopes=frozenset(TokenScope.values),
            throttle_key=f"user:{user.pk}",
            read_only=True,
        )


class ApiAuth(HttpBearer):
    """``Authorization: Bearer sgs_…`` for agents; staff browser sessions may read."""

    def __init__(self, scope: TokenScope | None) -> None:
        super().__init__()
        self.scope = scope  # None: any valid token or staff session

    def __call__(self, request: HttpRequest) -> Principal:
        principal = self._principal(request)
        try:
            if principal.read_only and request.method not in SAFE_METHODS:
                raise StaffReadOnly
            if self.scope is not None and self.scope not in principal.scopes:
                raise ScopeMissing(
                    self.scope, sorted(principal.scopes, key=TokenScope.values.index)
                )
        except DomainError as exc:
            record_refusal(request, exc, actor=principal.actor, resource="api")
            raise
        return principal

    def _principal(self, request: HttpRequest) -> Principal:
        header = request.headers.get(self.header, "")
        if not header:
            principal = Principal.for_staff(request)
            if principal is None:
                raise CredentialsMissing  # not an attempt: neither counted nor recorded
            return principal
        scheme, _, raw = header.partition(" ")
        prefix = token_prefix_of(raw.strip())
        address = client_address(request)
        # Before any database work: a flood from one address costs one Redis call each.
        failures.throttle(failures.FailureKind.API_TOKEN, address, tried=prefix)
        try:
            if scheme.lower() != self.openapi_scheme:
                raise InvalidToken
            return self.authenticate(request, raw.strip())
        except (InvalidToken, TokenRevoked) as exc:
            api_authentication_failure_record(
                code=exc.code,
                prefix=prefix,
                method=request.method or "",
                path=request.path,
                remote_addr=address,
            )
            raise

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        return Principal.for_token(agent_token_authenticate(token))


read_access = ApiAuth(TokenScope.READ)
write_access = ApiAuth(TokenScope.WRITE)
admin_access = ApiAuth(TokenScope.ADMIN)
work_access = ApiAuth(TokenScope.WORK)
any_access = ApiAuth(None)


def record_refusal(request: HttpRequest, exc: DomainError, *, actor: str, resource: str) -> None:
    """The audit event of a refused authorisation (``access_denied``); failed
    authentications are counted per address instead (``api_authentication_failure_record``)."""
    api_refusal_record(
        action="access_denied",
        code=exc.code,
        actor=actor,
        resource=resource,
        method=request.method or "",
        path=request.path,
        remote_addr=client_address(request),
    )


def unconfined_only(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A router decorator: tokens confined to their own sessions are refused (403)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            principal: Principal = request.auth  # type: ignore[attr-defined]
            if principal.sessions_owner is not None:
                exc = TokenConfined(what)
                record_refusal(request, exc, actor=principal.actor, resource="api")
                raise exc
            return view(request, *args, **kwargs)

        return checked

    return decorate
