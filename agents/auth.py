"""Who is calling the API: agent bearer tokens, or a staff member's browser session.

Each operation declares the scope it needs (``ApiAuth(TokenScope.WRITE)``); the auth
callable authenticates, checks the scope and hands the handler a ``Principal`` as
``request.auth``. Failures raise domain errors, which the API maps to 401/403.
"""

from dataclasses import dataclass

from django.http import HttpRequest
from ninja.security import HttpBearer

from agents.exceptions import CredentialsMissing, InvalidToken, ScopeMissing, StaffReadOnly
from agents.models import AgentToken, TokenScope
from agents.services import agent_token_authenticate

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

    @classmethod
    def for_token(cls, token: AgentToken) -> "Principal":
        return cls(
            name=token.name,
            actor=token.actor,
            scopes=token.effective_scopes,
            throttle_key=f"token:{token.prefix}",
            token=token,
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

    def __init__(self, scope: TokenScope) -> None:
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest) -> Principal:
        header = request.headers.get(self.header, "")
        if header:
            scheme, _, raw = header.partition(" ")
            if scheme.lower() != self.openapi_scheme:
                raise InvalidToken
            principal = self.authenticate(request, raw.strip())
        else:
            principal = Principal.for_staff(request)
            if principal is None:
                raise CredentialsMissing
        if principal.read_only and request.method not in SAFE_METHODS:
            raise StaffReadOnly
        if self.scope not in principal.scopes:
            raise ScopeMissing(self.scope, sorted(principal.scopes, key=TokenScope.values.index))
        return principal

    def authenticate(self, request: HttpRequest, token: str) -> Principal:
        return Principal.for_token(agent_token_authenticate(token))


read_access = ApiAuth(TokenScope.READ)
write_access = ApiAuth(TokenScope.WRITE)
admin_access = ApiAuth(TokenScope.ADMIN)
