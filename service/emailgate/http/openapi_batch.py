"""The batch API's part of the OpenAPI document (ListCleanser's `/api/v1/batch` shapes)."""

from __future__ import annotations

from typing import Any

from emailgate.jobs.model import MAX_CREDITS

STATUSES = ["processing", "waiting_approval", "processed", "failed", "cancelled"]
STATES = ["deliverable", "undeliverable", "risky", "unknown"]
_int0: dict[str, Any] = {"type": "integer", "minimum": 0}
_credits: dict[str, Any] = {"type": "integer", "minimum": 0, "maximum": MAX_CREDITS}

JOB: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name", "status", "context", "number_of_total", "duplicates",
                 "invalid_format", "domains", "billable", "credits_spent", "processed",
                 "progress", "counts", "provider", "created_at", "updated_at", "error"],
    "properties": {
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "status": {"type": "string", "enum": STATUSES},
        "context": {"type": "string"},
        "number_of_total": {**_int0, "description": "Input rows as given."},
        "duplicates": {**_int0, "description": "Rows repeating an earlier row's mailbox."},
        "invalid_format": {**_int0, "description": "Rows with bad syntax."},
        "domains": {**_int0, "description": "Distinct domains of valid addresses."},
        "billable": {**_int0, "description": "Distinct addresses left for a paid check."},
        "credits_spent": _int0,
        "processed": {**_int0, "description": "Distinct addresses answered."},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "counts": {
            "type": "object", "additionalProperties": False, "required": STATES,
            "properties": {s: _int0 for s in STATES},
        },
        "provider": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "error": {"type": ["string", "null"]},
    },
}  # fmt: skip

CREATED: dict[str, Any] = {
    "type": "object",
    "required": ["success", "data"],
    "properties": {
        "success": {"const": True},
        "data": {
            "type": "object",
            "required": ["id", "name", "status", "number_of_total"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "status": {"type": "string", "enum": STATUSES},
                "number_of_total": _int0,
            },
        },
    },
}

LISTING: dict[str, Any] = {
    "type": "object",
    "required": ["success", "data", "page", "per_page", "total_pages"],
    "properties": {
        "success": {"const": True},
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
        "page": {"type": "integer"},
        "per_page": {"type": "integer"},
        "total_pages": {"type": "integer"},
    },
}

PROGRESS: dict[str, Any] = {
    "type": "object",
    "required": ["success", "state", "job"],
    "properties": {
        "success": {"const": True},
        "state": {"type": "string", "enum": STATUSES},
        "progress": {"type": "integer", "minimum": 0, "maximum": 100},
        "job": {"$ref": "#/components/schemas/Job"},
        "stats": {
            "type": "object",
            "required": ["total", "duplicate", *STATES],
            "properties": {
                "total": _int0,
                "duplicate": {"type": "number"},
                **{s: {"type": "number", "description": "% of distinct addresses"} for s in STATES},
            },
        },
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "email"],
                "properties": {
                    "id": {"type": "integer"},
                    "email": {"$ref": "#/components/schemas/Result"},
                },
            },
        },
        "page": {"type": "integer"},
        "per_page": {"type": "integer"},
        "count": _int0,
        "total_pages": _int0,
    },
}

JOB_OK: dict[str, Any] = {
    "type": "object",
    "required": ["success", "data"],
    "properties": {"success": {"const": True}, "data": {"$ref": "#/components/schemas/Job"}},
}

DELETED: dict[str, Any] = {
    "type": "object",
    "required": ["success"],
    "properties": {"success": {"const": True}, "message": {"type": "string"}},
}

SCHEMAS = {"Job": JOB, "BatchCreated": CREATED, "BatchList": LISTING, "BatchStatus": PROGRESS,
           "JobOk": JOB_OK, "Deleted": DELETED}  # fmt: skip


def _json(description: str, ref: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _err(description: str) -> dict[str, Any]:
    return _json(description, "Error")


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
_PAGE = [
    {"name": "page", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "default": 1}},
    {"name": "per_page", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}},
]  # fmt: skip
_WHO = {
    "401": _err("Missing or unknown key."),
    "403": _err("Public keys may not use batch jobs (or the key is not allowed from here)."),
    "429": _err("Too many requests (or uploads: 6 a minute per key by default)."),
}
_MISSING = _err("No such job for this key (another key's job is not found either).")


def paths() -> dict[str, Any]:
    """The `/api/v1/batch` paths, and the EmailConsul webhook that wakes a job's list."""
    fields = {
        "name": {"type": "string", "maxLength": 500},
        "context": {"type": "string", "default": "marketing"},
        "callback_url": {"type": "string", "description": "https URL for status webhooks."},
        "max_credits": _credits,
    }
    return {
        "/api/v1/batch": {
            "post": {
                "operationId": "batchCreate",
                "summary": "Start a batch job from a JSON list or an uploaded file",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["emails"],
                                "properties": {
                                    "emails": {
                                        "type": "array",
                                        "items": {"type": "string"},
                                        "minItems": 1,
                                        "maxItems": 50000,
                                    },
                                    **fields,
                                },
                            }
                        },
                        "multipart/form-data": {
                            "schema": {
                                "type": "object",
                                "required": ["email_list"],
                                "properties": {
                                    "email_list": {
                                        "type": "string",
                                        "format": "binary",
                                        "description": ".csv, .txt or .xlsx",
                                    },
                                    "column": {"type": "string"},
                                    **{k: {"type": "string"} for k in fields},
                                },
                            }
                        },
                    },
                },
                "responses": {
                    "201": _json("The job is accepted.", "BatchCreated"),
                    "400": _err("Empty list, no address column, bad field or callback_url."),
                    "413": _err("Over 50,000 JSON addresses, or the row or byte limit."),
                    "415": _err("Not JSON or multipart, or a file that is not CSV/TXT/XLSX."),
                    **_WHO,
                },
            },
            "get": {
                "operationId": "batchList",
                "summary": "The key's jobs, newest first",
                "parameters": _PAGE,
                "responses": {
                    "200": _json("One page of jobs.", "BatchList"),
                    "400": _err("Bad page or per_page."),
                    **_WHO,
                },
            },
        },
        "/api/v1/batch/{id}": {
            "get": {
                "operationId": "batchStatus",
                "summary": "Progress, then the results (ListCleanser's completed shape)",
                "parameters": [
                    _ID,
                    *_PAGE,
                    {
                        "name": "state",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": STATES},
                    },
                ],
                "responses": {
                    "200": _json("Progress, or results once processed.", "BatchStatus"),
                    "400": _err("Bad page, per_page or state."),
                    "404": _MISSING,
                    **_WHO,
                },
            },
            "delete": {
                "operationId": "batchDelete",
                "summary": "Cancel the job and delete it with every address it holds",
                "parameters": [_ID],
                "responses": {"200": _json("Deleted.", "Deleted"), "404": _MISSING, **_WHO},
            },
        },
        "/api/v1/batch/{id}/download": {
            "get": {
                "operationId": "batchDownload",
                "summary": "The input rows with their results, as CSV",
                "parameters": [
                    _ID,
                    {
                        "name": "export_type",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "enum": ["all", "ok", "bad"],
                            "default": "all",
                        },
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The input's columns, then state, reason, score, "
                        "decision, did_you_mean, disposable, free, role, accept_all, source.",
                        "content": {"text/csv": {"schema": {"type": "string"}}},
                    },
                    "400": _err("Bad export_type."),
                    "404": _MISSING,
                    "409": _err("The job is not processed yet."),
                    **_WHO,
                },
            },
        },
        "/api/v1/batch/{id}/start": {
            "post": {
                "operationId": "batchStart",
                "summary": "Start a job waiting for approval",
                "parameters": [_ID],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"max_credits": _credits},
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json("The job runs.", "JobOk"),
                    "400": _err("Bad body, or max_credits below the job's billable."),
                    "404": _MISSING,
                    "409": _err("The job is not waiting for approval."),
                    "413": _err("The body is too large."),
                    **_WHO,
                },
            },
        },
        "/hooks/emailconsul": {
            "post": {
                "operationId": "emailconsulWebhook",
                "summary": "EmailConsul's list webhook (EMAILGATE_EMAILCONSUL_WEBHOOK_URL): the "
                "job waiting on the list polls it at once",
                "security": [],
                "parameters": [
                    {"name": name, "in": "query", "required": True, "schema": {"type": "string"}}
                    for name in ("ref", "sig")
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["id"],
                                "properties": {"id": {"type": ["string", "integer"]}},
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "Taken as a wake-up (`woken`: a job waits on the list).",
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
                    "400": _err("Not a JSON object with the list's id."),
                    "401": _err("No ref and sig in the address."),
                    "403": _err("sig is not the signature of ref."),
                    "404": _err("No list of ours with this id and reference (or not configured)."),
                    "413": _err("The body is too large."),
                },
            },
        },
    }
