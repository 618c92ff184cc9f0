"""The OpenAPI 3.1 description of the HTTP API, served at /openapi.json.

Tests validate real responses against these schemas, so this document cannot drift from the code.
"""

from __future__ import annotations

from typing import Any

from emailgate import __version__
from emailgate.http import openapi_batch, openapi_enrich
from emailgate.verify.result import ACCOUNTS, Decision, Reason, Source, State

# The enums are the code's own (verify/result.py): the document cannot list a value the
# service never gives, nor miss one it does.
STATES = [s.value for s in State]
REASONS = [r.value for r in Reason]
SOURCES = [s.value for s in Source]
DECISIONS = [d.value for d in Decision]
ACCOUNT_NAMES = [p.value for p in ACCOUNTS]

_nullable_str: dict[str, Any] = {"type": ["string", "null"]}
_nullable_bool: dict[str, Any] = {"type": ["boolean", "null"]}

RESULT: dict[str, Any] = {
    "type": "object",
    "description": "ListCleanser's single-verify record plus the decision for the context.",
    "additionalProperties": False,
    "required": [
        "email_address",
        "user",
        "domain",
        "state",
        "reason",
        "score",
        "accept_all",
        "disposable",
        "free",
        "role",
        "possible_spamtrap",
        "did_you_mean",
        "mx_record",
        "smtp_provider",
        "duration",
        "decision",
        "context",
        "threshold",
        "source",
        "cached",
    ],
    "properties": {
        "email_address": {
            "type": "string",
            "description": "The address as checked: trimmed, domain lower-cased, IDNA.",
        },
        "user": {"type": "string", "description": "Local part."},
        "domain": {"type": "string", "description": "Domain, in Unicode form."},
        "state": {"type": "string", "enum": STATES},
        "reason": {"type": "string", "enum": REASONS},
        "score": {"type": "integer", "minimum": 0, "maximum": 100},
        "accept_all": {
            **_nullable_bool,
            "description": "Domain accepts every address; null when not known.",
        },
        "disposable": {"type": "boolean"},
        "free": {"type": "boolean"},
        "role": {"type": "boolean"},
        "possible_spamtrap": {"type": "boolean"},
        "did_you_mean": {
            **_nullable_str,
            "description": "Suggested address when the domain looks like a typo.",
        },
        "mx_record": {**_nullable_str, "description": "Best MX host."},
        "smtp_provider": {**_nullable_str, "description": "Mailbox provider when known."},
        "duration": {
            "type": "number",
            "minimum": 0,
            "description": "Seconds spent on this check (for public keys: as long as a fresh "
            "check of its kind takes, also when answered from the cache).",
        },
        "decision": {"type": "string", "enum": DECISIONS},
        "context": {"type": "string"},
        "threshold": {"type": "integer", "minimum": 0, "maximum": 100},
        "source": {"type": "string", "enum": SOURCES, "description": "Who produced the verdict."},
        "cached": {
            "type": "boolean",
            "description": "Answered from the cache; always false for public keys, whose "
            "answers never tell whether the address was checked before.",
        },
    },
}

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["success", "message"],
    "properties": {"success": {"const": False}, "message": {"type": "string"}},
}

VERIFY_OK: dict[str, Any] = {
    "type": "object",
    "required": ["success", "data"],
    "additionalProperties": False,
    "properties": {"success": {"const": True}, "data": {"$ref": "#/components/schemas/Result"}},
}

CREDITS: dict[str, Any] = {
    "type": "object",
    "required": ["success", "data"],
    "properties": {
        "success": {"const": True},
        "data": {
            "type": "object",
            "required": ACCOUNT_NAMES,
            "additionalProperties": False,
            "properties": {name: {"type": ["integer", "null"]} for name in ACCOUNT_NAMES},
        },
    },
}

STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["success", "status"],
    "properties": {
        "success": {"type": "boolean"},
        "status": {"type": "string"},
        "message": {"type": "string"},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "checks": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["ok", "detail"],
                "properties": {"ok": {"type": "boolean"}, "detail": {"type": "string"}},
            },
        },
    },
}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


_LIMIT_HEADERS: dict[str, Any] = {
    "RateLimit-Limit": {
        "schema": {"type": "integer", "minimum": 1},
        "description": "Requests allowed in the current window (per key, or per client IP).",
    },
    "RateLimit-Remaining": {
        "schema": {"type": "integer", "minimum": 0},
        "description": "Requests left in the current window.",
    },
    "RateLimit-Reset": {
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds until the window ends and the full limit is back.",
    },
}

_RATE_HEADERS: dict[str, Any] = {
    "Retry-After": {
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
        "description": "Seconds to wait.",
    },
    **_LIMIT_HEADERS,
}

_UNAUTHORIZED_HEADERS: dict[str, Any] = {
    "WWW-Authenticate": {"required": True, "schema": {"type": "string"}},
}


def _ok(description: str, ref: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": _LIMIT_HEADERS,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


_VERIFY_RESPONSES: dict[str, Any] = {
    "200": _ok(
        "The verdict, also for a bad address: an undeliverable address is a result.", "VerifyOk"
    ),
    "400": _error("Malformed request: no or non-string email, bad JSON, unknown context."),
    "401": _error("Missing or unknown key.", _UNAUTHORIZED_HEADERS),
    "403": _error("Key not allowed here (origin or client address)."),
    "413": _error("Body larger than 8 KiB."),
    "429": _error("Too many requests.", _RATE_HEADERS),
}

_PREFLIGHT: dict[str, Any] = {
    "summary": "CORS preflight",
    "description": "Answered for the origins of the keys file's public (and test) keys; "
    "no key is sent with a preflight. Without an Origin header it is not a preflight (405).",
    "security": [],
    "parameters": [
        {"name": "Origin", "in": "header", "required": True, "schema": {"type": "string"}},
        {
            "name": "Access-Control-Request-Method",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "enum": ["GET", "POST"]},
        },
    ],
    "responses": {
        "204": {
            "description": "The origin may call this path.",
            "headers": {
                "Access-Control-Allow-Origin": {"required": True, "schema": {"type": "string"}},
                "Access-Control-Allow-Methods": {"required": True, "schema": {"type": "string"}},
                "Access-Control-Allow-Headers": {"required": True, "schema": {"type": "string"}},
                "Access-Control-Max-Age": {"schema": {"type": "integer"}},
            },
        },
        "403": _error("No key allows this origin (or the service runs without a keys file)."),
        "405": _error("Not a preflight: no Origin header."),
    },
}

_CONTEXT_DESCRIPTION = "Decision context; its threshold comes from EMAILGATE_THRESHOLDS."


def document() -> dict[str, Any]:
    """The OpenAPI document as a plain dict."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "emailgate",
            "version": __version__,
            "description": "Real-time email validation for signup forms.",
        },
        "servers": [{"url": "/"}],
        "security": [{}, {"ApiKey": []}, {"Bearer": []}],
        "paths": {
            "/api/v1/verify": {
                "get": {
                    "operationId": "verifyGet",
                    "summary": "Check one address",
                    "parameters": [
                        {
                            "name": "email",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                            "description": "The address to check.",
                        },
                        {
                            "name": "context",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "default": "signup"},
                            "description": _CONTEXT_DESCRIPTION,
                        },
                    ],
                    "responses": _VERIFY_RESPONSES,
                },
                "post": {
                    "operationId": "verifyPost",
                    "summary": "Check one address",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["email"],
                                    "properties": {
                                        "email": {"type": "string"},
                                        "context": {
                                            "type": "string",
                                            "default": "signup",
                                            "description": _CONTEXT_DESCRIPTION,
                                        },
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        **_VERIFY_RESPONSES,
                        "408": _error("The body did not arrive in time."),
                    },
                },
                "options": {"operationId": "verifyPreflight", **_PREFLIGHT},
            },
            "/api/v1/credits": {
                "get": {
                    "operationId": "credits",
                    "summary": "Last known provider credits",
                    "responses": {
                        "200": _ok("Credits per provider; null when not known.", "Credits"),
                        "401": _error("Missing or unknown key.", _UNAUTHORIZED_HEADERS),
                        "403": _error("Key not allowed here (public keys may only verify)."),
                        "429": _error("Too many requests.", _RATE_HEADERS),
                    },
                },
                "options": {"operationId": "creditsPreflight", **_PREFLIGHT},
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness",
                    "security": [],
                    "responses": {"200": _status("The process serves.")},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness",
                    "security": [],
                    "responses": {
                        "200": _status("Ready to answer."),
                        "503": _status("Not ready; `reasons` says why."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/static/emailgate.js": {
                "get": {
                    "operationId": "widget",
                    "summary": "The browser widget (docs/widget.md)",
                    "security": [],
                    "parameters": [
                        {
                            "name": "If-None-Match",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The script, with an ETag and CORS for any page.",
                            "content": {"text/javascript": {"schema": {"type": "string"}}},
                        },
                        "304": {"description": "The copy the browser holds is current."},
                    },
                }
            },
            "/demo": {
                "get": {
                    "operationId": "demo",
                    "summary": "A demo signup page using the widget (absent when EMAILGATE_DEMO=0)",
                    "security": [],
                    "responses": {
                        "200": _html("The demo page."),
                        "404": {"description": "The demo is switched off."},
                    },
                },
                "post": {
                    "operationId": "demoSubmit",
                    "summary": "The demo form's handler: shows what it received, keeps nothing",
                    "security": [],
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"email": {"type": "string"}},
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _html("A thank-you page echoing the address, escaped."),
                        "404": {"description": "The demo is switched off."},
                        "405": {"description": "The demo is switched off."},
                        "413": {"description": "The body is too large."},
                    },
                },
            },
            **openapi_batch.paths(),
            **openapi_enrich.paths(),
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1 document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {
                "Result": RESULT,
                "VerifyOk": VERIFY_OK,
                "Error": ERROR,
                "Credits": CREDITS,
                "Status": STATUS,
                **openapi_batch.SCHEMAS,
                **openapi_enrich.SCHEMAS,
            },
            "securitySchemes": {
                "ApiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "A client key from the keys file (EMAILGATE_API_KEYS_FILE). "
                    "Without a keys file the service runs open and no key is needed.",
                },
                "Bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The same client key as `Authorization: Bearer KEY`.",
                },
            },
        },
    }


def _html(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"text/html": {"schema": {"type": "string"}}}}


def _status(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Status"}}},
    }
