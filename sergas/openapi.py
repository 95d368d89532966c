"""The error answers of the API, documented once for every operation.

Handlers declare only their success responses; every error takes the one form of
``sergas.api`` (``{"code", "detail", ...context}``), so the schema gets it here for the
statuses each kind of operation can answer, and clients and fuzzers (schemathesis) can
check every answer against the schema.
"""

from typing import Any

ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "Stable machine code, e.g. invalid_transition."},
        "detail": {"type": "string", "description": "What went wrong, for a person."},
    },
    "required": ["code", "detail"],
    "additionalProperties": True,
}

# status -> when; see docs/api.md, "Errors".
ERRORS = {
    "400": "The body is not JSON.",
    "401": "No credentials, an invalid or a revoked token.",
    "403": "The token lacks the scope, or a browser session tried to write.",
    "404": "No such resource (or not one this token may see).",
    "409": "The current state forbids it.",
    "413": "The body or the batch is over its limit.",
    "422": "Input that can never succeed as given; `field` names the culprit.",
    "429": "Over the caller's rate, or too many failed logins from its address; see Retry-After.",
    "503": "PostgreSQL is unavailable; retry after Retry-After seconds.",
}
_WRITES_ONLY = {"409", "413"}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error form and its statuses to every operation of an OpenAPI schema."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            for status, description in ERRORS.items():
                if status in _WRITES_ONLY and method == "get":
                    continue
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return schema
