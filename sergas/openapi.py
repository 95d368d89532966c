"""What the OpenAPI schema says beyond what ninja writes.

Handlers declare only their success responses; every error takes the one form of
``sergas.api`` (``{"code", "detail", ...context}``), so the schema gets it here for the
statuses each kind of operation can answer, and clients and fuzzers (schemathesis) can
check every answer against the schema. Parameters are stated as a client must send them:
an optional one is left out rather than null, and one holding JSON (``contentMediaType``)
takes OpenAPI's ``content`` form, so generated clients and fuzzers send valid JSON. Text
the database cannot store (NUL, lone UTF-16 surrogates; ``access.inputs``) is refused
anywhere in a request, so every string and every key a request may carry says so too.
"""

import re
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

# Text PostgreSQL can store (access.inputs refuses the rest with 422 invalid_text): no NUL.
# Lone surrogates, refused too, are not Unicode text, which JSON Schema's strings are; a
# surrogate range would not even compile in most validators' regex engines.
STORABLE_TEXT = r"^[^\u0000]*$"
_STORABLE = {"pattern": STORABLE_TEXT}
_ANY_JSON = {"$ref": "#/components/schemas/StorableJSON"}
# Any JSON value whose strings and keys are storable: free-form objects (metadata,
# context, account filters) hold these.
STORABLE_JSON = {
    "anyOf": [
        {"type": "string", **_STORABLE},
        {"type": "number"},
        {"type": "boolean"},
        {"type": "null"},
        {"type": "array", "items": _ANY_JSON},
        {"type": "object", "propertyNames": _STORABLE, "additionalProperties": _ANY_JSON},
    ]
}
# Formats whose strings cannot hold those characters anyway.
_TEXT_FREE_FORMATS = {"uuid", "date-time", "date", "time"}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error form and its statuses to every operation of an OpenAPI schema."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for component in components.values():
        _storable(component)
    components["Error"] = ERROR_SCHEMA
    components["StorableJSON"] = STORABLE_JSON
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                _as_sent(parameter)
            for content in operation.get("requestBody", {}).get("content", {}).values():
                _storable(content.get("schema", {}))
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


def _as_sent(parameter: dict[str, Any]) -> None:
    """An optional query or header parameter is absent, never null; a JSON one is
    ``content: application/json``."""
    schema = parameter.get("schema")
    if schema is None:
        return
    branches = schema.get("anyOf", [])
    given = [branch for branch in branches if branch != {"type": "null"}]
    if len(given) == 1 and len(branches) == 2:
        del schema["anyOf"]
        schema.update(given[0])
    if schema.get("contentMediaType") == "application/json":
        parameter["content"] = {"application/json": {"schema": schema["contentSchema"]}}
        del parameter["schema"]
        schema = schema["contentSchema"]
    if parameter.get("in") == "query":
        _storable(schema)


def _storable(schema: Any) -> None:
    """Say, in place, that every string and key ``schema`` admits is storable text, and
    that what it leaves free-form is ``StorableJSON``."""
    if not isinstance(schema, dict) or "$ref" in schema:
        return
    kind = schema.get("type")
    said = schema.get("pattern") == STORABLE_TEXT or _STORABLE in schema.get("allOf", [])
    free_text = "enum" not in schema and schema.get("format") not in _TEXT_FREE_FORMATS
    if kind == "string" and free_text and not said:
        pattern = schema.get("pattern")
        if pattern is None:
            schema.update(_STORABLE)
        elif re.search(pattern, "x\x00x"):
            # Two patterns in one schema: only generate-and-filter can meet both.
            schema.setdefault("allOf", []).append(dict(_STORABLE))
    if kind == "object" or "properties" in schema:
        schema.setdefault("propertyNames", dict(_STORABLE))
        extra = schema.get("additionalProperties", True)
        if extra is True or extra == {}:
            schema["additionalProperties"] = dict(_ANY_JSON)
        else:
            _storable(extra)
    if kind == "array":
        items = schema.get("items", {})
        if items in ({}, True):
            schema["items"] = dict(_ANY_JSON)
        else:
            _storable(items)
    for value in schema.get("properties", {}).values():
        _storable(value)
    for keyword in ("anyOf", "allOf", "oneOf"):
        for branch in schema.get(keyword, []):
            _storable(branch)
    for keyword in ("if", "then", "else"):
        _storable(schema.get(keyword))
