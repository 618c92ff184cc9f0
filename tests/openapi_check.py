"""Validate real responses against the service's own OpenAPI document."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from emailgate.http.openapi import document

DOC = document()


def response_schema(method: str, path: str, status: int) -> dict[str, Any] | None:
    """The JSON schema the document promises for this answer (None if not JSON)."""
    operation = DOC["paths"][path][method.lower()]
    response = operation["responses"].get(str(status))
    assert response is not None, f"{method} {path} answered {status}, which is not documented"
    content = response.get("content", {})
    if "application/json" not in content:
        return None
    return dict(content["application/json"]["schema"])


def check(method: str, path: str, status: int, body: Any) -> None:
    """Raise if `body` does not match what the document says for (method, path, status)."""
    schema = response_schema(method, path, status)
    if schema is None:
        return
    # Resolve "#/components/..." against the whole document.
    root = {**DOC, **schema}
    Draft202012Validator(root).validate(body)
