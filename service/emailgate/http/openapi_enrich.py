"""The enrichment API's part of the OpenAPI document (`/api/v1/enrich`)."""

from __future__ import annotations

from typing import Any

from emailgate.http.openapi_batch import JOB, STATUSES, _err, _json

_int0: dict[str, Any] = {"type": "integer", "minimum": 0}
_text: dict[str, Any] = {"type": "string", "maxLength": 500}
OUTCOMES = ["found", "not_found", "failed"]
TYPES = ["none", "partial", "phone_only", "full"]

CONTACT_IN: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "A linkedin_url, or first_name, last_name and company_domain or company_name.",
    "properties": {
        "first_name": _text,
        "last_name": _text,
        "company_domain": _text,
        "company_name": _text,
        "linkedin_url": _text,
        "email": _text,
    },
}

ENRICHMENT: dict[str, Any] = {
    "type": "object",
    "description": "The job's enrichment type and what was found so far (contacts).",
    "required": ["enrichment_type", "found", "not_found", "failed", "emails_found",
                 "emails_rejected", "phones_found"],
    "properties": {
        "enrichment_type": {"type": "string", "enum": TYPES},
        "found": _int0, "not_found": _int0, "failed": _int0,
        "emails_found": _int0,
        "emails_rejected": {**_int0, "description": "Found emails the verify pipeline rejects."},
        "phones_found": _int0,
    },
}  # fmt: skip

ENRICH_JOB: dict[str, Any] = {
    **JOB,
    "required": [*JOB["required"], "enrichment"],
    "properties": {**JOB["properties"], "enrichment": ENRICHMENT},
}

CONTACT_OUT: dict[str, Any] = {
    "type": "object",
    "required": ["index", "contact", "status", "email", "email_rejected",
                 "provider_email_status", "phones", "result", "error"],
    "properties": {
        "index": {**_int0, "description": "The contact's place in the request."},
        "contact": {"type": "object", "additionalProperties": {"type": "string"}},
        "status": {"type": "string", "enum": OUTCOMES},
        "email": {"type": ["string", "null"], "description": "The work email found."},
        "email_rejected": {
            "type": "boolean",
            "description": "The verify pipeline rejects the found email (see result).",
        },
        "provider_email_status": {"type": ["string", "null"]},
        "phones": {"type": "array", "items": {"type": "string"}},
        "result": {
            "oneOf": [{"$ref": "#/components/schemas/Result"}, {"type": "null"}],
            "description": "The verify RESULT of the found email, for the job's context.",
        },
        "error": {"type": ["string", "null"]},
    },
}  # fmt: skip

STATUS: dict[str, Any] = {
    "type": "object",
    "required": ["success", "state", "progress", "job"],
    "properties": {
        "success": {"const": True},
        "state": {"type": "string", "enum": STATUSES},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "job": {"$ref": "#/components/schemas/EnrichJob"},
        "data": {
            "type": "array",
            "description": "Once the job has ended: its contacts in input order.",
            "items": {"$ref": "#/components/schemas/EnrichedContact"},
        },
        "page": {"type": "integer"},
        "per_page": {"type": "integer"},
        "count": _int0,
        "total_pages": _int0,
    },
}

SCHEMAS = {"EnrichJob": ENRICH_JOB, "EnrichedContact": CONTACT_OUT, "EnrichStatus": STATUS}

_WHO = {
    "401": _err("Missing or unknown key."),
    "403": _err("Public keys may not enrich (or the key is not allowed from here)."),
    "429": _err("Too many requests (or jobs: 6 a minute per key by default)."),
}


def paths() -> dict[str, Any]:
    """The `/api/v1/enrich` paths."""
    return {
        "/api/v1/enrich": {
            "post": {
                "operationId": "enrichCreate",
                "summary": "Enrich up to 10,000 contacts (Cleanlist.ai); every found email "
                "verified",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["contacts"],
                                "properties": {
                                    "enrichment_type": {
                                        "type": "string",
                                        "enum": TYPES,
                                        "default": "partial",
                                    },
                                    "contacts": {
                                        "type": "array",
                                        "items": CONTACT_IN,
                                        "minItems": 1,
                                        "maxItems": 10_000,
                                    },
                                    "callback_url": {
                                        "type": "string",
                                        "description": "https URL for webhooks.",
                                    },
                                    "name": {"type": "string", "maxLength": 200},
                                    "context": {"type": "string", "default": "marketing"},
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "201": _json("The job is accepted.", "BatchCreated"),
                    "400": _err("Bad JSON, an unidentifiable contact, a bad field or callback."),
                    "413": _err("Over 10,000 contacts, or the body is too large."),
                    "415": _err("Not JSON."),
                    "503": _err(
                        "Enrichment is off (no valid Cleanlist.ai key); test keys "
                        "still run in the sandbox."
                    ),
                    **_WHO,
                },
            },
        },
        "/api/v1/enrich/{id}": {
            "get": {
                "operationId": "enrichStatus",
                "summary": "Progress, then each contact with what was found and its RESULT",
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
                    {
                        "name": "page",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "default": 1},
                    },
                    {
                        "name": "per_page",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1000,
                            "default": 100,
                        },
                    },
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": OUTCOMES},
                    },
                ],
                "responses": {
                    "200": _json("Progress; the contacts once the job has ended.", "EnrichStatus"),
                    "400": _err("Bad page, per_page or status."),
                    "404": _err("No such job for this key."),
                    **_WHO,
                },
            },
        },
        "/hooks/cleanlist/{token}": {
            "post": {
                "operationId": "cleanlistCallback",
                "summary": "Cleanlist.ai's completion callback (EMAILGATE_CLEANLIST_WEBHOOK_URL): "
                "the job polls that workflow at once",
                "security": [],
                "parameters": [
                    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"workflow_id": {"type": "string"}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Taken as a wake-up (`woken`: this replica polls now).",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["success", "woken"],
                                    "properties": {
                                        "success": {"const": True},
                                        "woken": {"type": "boolean"},
                                    },
                                }
                            }
                        },
                    },
                    "400": _err("Not JSON, or no workflow_id."),
                    "404": _err("Not the secret path part (or no webhook configured)."),
                    "413": _err("The body is too large."),
                },
            },
        },
    }
