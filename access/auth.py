"""Who is calling the API: agent bearer tokens, or a staff member's browser session.

Each operation declares the scope it needs (``ApiAuth(TokenScope.WRITE)``); the auth
callable authenticates, checks the scope and hands the handler a ``Principal`` as
``request.auth``. Failures raise domain errors, which the API maps to 401/403. An
address with too many failed tokens in the current window is refused (429) before the
token is looked up (``access.failures``).

A token this process verified recently is not looked up again (``access.token_cache``),
and its requests are admitted under a ticket that answers, for a second at a time,
whether the address is throttled, the token revoked, the caller over its rate
(``access.admission``).
"""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from access import admission, failures
from access.addresses import client_address
from access.exceptions import (
    CredentialsMissing,
    InvalidToken,
    ScopeMissing,
    StaffReadOnly,
    TokenConfined,
    TokenRevoked,
)
from access.models import AgentToken, TokenScope
from access.services import (
    agent_token_authenticate,
    agent_token_touch,
    api_authentication_failure_record,
    api_refusal_record,
    token_hash,
    token_prefix_of,
)
from access.throttling import DECIDED
from access.token_cache import token_cache
from kernel.errors import DomainError
from kernel.logs import context as log_context

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
        log_context.bind(
            actor=principal.actor, token_prefix=principal.token.prefix if principal.token else None
        )
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
        raw = raw.strip()
        prefix = token_prefix_of(raw)
        address = client_address(request)
        bearer = scheme.lower() == self.openapi_scheme
        digest = token_hash(raw)
        if bearer and prefix is not None:
            principal = token_cache().get(digest)
            if principal is not None and self._admit(request, principal, digest, address):
                return principal
        # Before any database work: a flood from one address costs one Redis call each.
        failures.throttle(failures.FailureKind.API_TOKEN, address, tried=prefix)
        try:
            if not bearer:
                raise InvalidToken
            principal = self.authenticate(request, raw)
        except (InvalidToken, TokenRevoked) as exc:
            api_authentication_failure_record(
                code=exc.code,
                prefix=prefix,
                method=request.method or "",
                path=request.path,
                remote_addr=address,
            )
            raise
        token_cache().put(digest, principal.token.prefix, principal)  # type: ignore[union-attr]
        self._admit(request, principal, digest, address)  # its rate, under a lease
        return principal

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        return Principal.for_token(agent_token_authenticate(token))

    def _admit(
        self, request: HttpRequest, principal: Principal, digest: str, address: str | None
    ) -> bool:
        """Admit a verified token's request (``access.admission``), leaving its rate
        decision for ``CallerRateThrottle``; 429 if its address is throttled. False when
        the long way must answer: a missing scope (refused and recorded by the caller), a
        revocation mark, Redis unreachable."""
        token = principal.token
        if token is None or (self.scope is not None and self.scope not in principal.scopes):
            return False
        admitted = admission.admit(
            digest=digest, prefix=token.prefix, address=address, throttle_key=principal.throttle_key
        )
        if admitted is None:
            return False
        if admitted.outcome is admission.Outcome.THROTTLED:
            raise admitted.check.refused()  # type: ignore[union-attr]
        if admitted.outcome is admission.Outcome.REVOKED:
            token_cache().forget(token.prefix)
            return False
        setattr(request, DECIDED, admitted.rate)
        agent_token_touch(token)
        return True


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
