"""Errors of API access: tokens, scopes, limits, idempotency. Messages are constants."""

from kernel.errors import (
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)

CREDENTIALS_MISSING = (
    "Authentication required: send 'Authorization: Bearer <token>' "
    "(create one with manage.py create_agent_token)."
)
TOKEN_INVALID = "The bearer token is not valid."
TOKEN_REVOKED = "The bearer token sgs_{prefix}_… was revoked at {revoked_at}."
SCOPE_MISSING = "This operation needs the '{scope}' scope; the token has {granted}."
STAFF_READ_ONLY = (
    "Staff browser sessions may only read through the API; use an agent token to write."
)
BODY_TOO_LARGE = "The request body is {size} bytes; the limit is {limit} bytes."
THROTTLED = "Too many requests: the limit is {rate} per caller; retry in {retry_after} s."
AUTHENTICATION_THROTTLED = (
    "Too many failed authentications from your address: the limit is {limit} per {window} s; "
    "retry in {retry_after} s."
)
TOKEN_NOT_FOUND = "No agent token has the prefix '{prefix}'."
INVALID_TOKEN_NAME = (
    "'{name}' is not a valid agent name: use 1-64 letters, digits, '_', '-' or '.'."
)
INVALID_SCOPES = "'{scopes}' is not a list of scopes; use one or more of {allowed}."
IDEMPOTENCY_KEY_REUSED = (
    "Idempotency-Key '{key}' was already used with a different request; use a new key."
)
STAFF_PERMISSION_DENIED = "You need the permission '{permission}' to do this."
TOKEN_CONFINED = "This token is confined to its own sessions; {what} need a token that is not."
CONFINED_ADMIN_TOKEN = (
    "A token confined to its own sessions cannot have the admin scope (it searches the whole "
    "audit trail)."
)
QUEUES_WITHOUT_WORK = "Queues limit the work scope: give the token the work scope too."
INVALID_QUEUE_NAME = (
    "'{queue}' is not a queue name: use 1-64 letters, digits, '_', '.' or '-', "
    "starting with a letter or a digit."
)
INVALID_IDEMPOTENCY_KEY = "Idempotency-Key must be 1-255 visible ASCII characters."


class CredentialsMissing(NotAuthenticated):
    code = "not_authenticated"

    def __init__(self) -> None:
        super().__init__(CREDENTIALS_MISSING)


class InvalidToken(NotAuthenticated):
    code = "invalid_token"

    def __init__(self) -> None:
        super().__init__(TOKEN_INVALID)


class TokenRevoked(NotAuthenticated):
    code = "token_revoked"

    def __init__(self, prefix: str, revoked_at: str) -> None:
        super().__init__(TOKEN_REVOKED.format(prefix=prefix, revoked_at=revoked_at))


class ScopeMissing(PermissionDenied):
    code = "insufficient_scope"

    def __init__(self, scope: str, granted: list[str]) -> None:
        super().__init__(
            SCOPE_MISSING.format(scope=scope, granted=", ".join(granted) or "none"),
            required_scope=scope,
        )


class StaffReadOnly(PermissionDenied):
    code = "read_only_session"

    def __init__(self) -> None:
        super().__init__(STAFF_READ_ONLY)


class BodyTooLarge(PayloadTooLarge):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(BODY_TOO_LARGE.format(size=size, limit=limit), limit=limit, unit="bytes")


class CallerThrottled(RateLimited):
    def __init__(self, rate: str, retry_after: int) -> None:
        super().__init__(
            THROTTLED.format(rate=rate, retry_after=retry_after), retry_after=retry_after
        )


class AuthenticationThrottled(RateLimited):
    """Too many failed authentications from one address: refused before any lookup."""

    def __init__(self, limit: int, window: int, retry_after: int) -> None:
        super().__init__(
            AUTHENTICATION_THROTTLED.format(limit=limit, window=window, retry_after=retry_after),
            retry_after=retry_after,
        )


class AgentTokenNotFound(NotFound):
    code = "token_not_found"

    def __init__(self, prefix: str) -> None:
        super().__init__(TOKEN_NOT_FOUND.format(prefix=prefix))


class InvalidTokenName(ValidationFailed):
    code = "invalid_token_name"

    def __init__(self, name: str) -> None:
        super().__init__(INVALID_TOKEN_NAME.format(name=name[:100]), field="name")


class InvalidScopes(ValidationFailed):
    code = "invalid_scopes"

    def __init__(self, scopes: object, allowed: list[str]) -> None:
        super().__init__(
            INVALID_SCOPES.format(scopes=scopes, allowed=", ".join(allowed)), field="scopes"
        )


class IdempotencyKeyReused(ValidationFailed):
    code = "idempotency_key_reused"

    def __init__(self, key: str) -> None:
        super().__init__(IDEMPOTENCY_KEY_REUSED.format(key=key), field="Idempotency-Key")


class InvalidIdempotencyKey(ValidationFailed):
    code = "invalid_idempotency_key"

    def __init__(self) -> None:
        super().__init__(INVALID_IDEMPOTENCY_KEY, field="Idempotency-Key")


class ConfinedAdminToken(ValidationFailed):
    code = "invalid_scopes"

    def __init__(self) -> None:
        super().__init__(CONFINED_ADMIN_TOKEN, field="scopes")


class TokenConfined(PermissionDenied):
    code = "own_sessions_only"

    def __init__(self, what: str) -> None:
        super().__init__(TOKEN_CONFINED.format(what=what))


class StaffPermissionDenied(PermissionDenied):
    code = "permission_denied"

    def __init__(self, permission: str) -> None:
        super().__init__(STAFF_PERMISSION_DENIED.format(permission=permission))


class InvalidQueues(ValidationFailed):
    code = "invalid_queues"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, field="queues")
