"""The job store's tables (SQLAlchemy Core, one schema for SQLite and PostgreSQL) and its
migrations.

Migrations are numbered steps recorded in `emailgate_schema`; each runs once, in a transaction,
under a lock (PostgreSQL: an advisory lock; SQLite: the database's write lock), so replicas that
start together migrate once. Alembic would add a configuration tree and a command to run before
the service; the embedded SQLite store must migrate itself at start, and a list of steps is all
that needs.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

metadata = sa.MetaData()

schema_version = sa.Table(
    "emailgate_schema",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("owner", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False, server_default="batch"),
    sa.Column("name", sa.String(500), nullable=False),
    sa.Column("context", sa.String(64), nullable=False),
    sa.Column("sandbox", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("callback_url", sa.Text),
    sa.Column("max_credits", sa.Integer),
    sa.Column("number_of_total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("duplicates", sa.Integer, nullable=False, server_default="0"),
    sa.Column("invalid_format", sa.Integer, nullable=False, server_default="0"),
    sa.Column("domains", sa.Integer, nullable=False, server_default="0"),
    sa.Column("distinct_total", sa.Integer, nullable=False, server_default="0"),
    sa.Column("billable", sa.Integer, nullable=False, server_default="0"),
    sa.Column("credits_spent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("deliverable", sa.Integer, nullable=False, server_default="0"),
    sa.Column("undeliverable", sa.Integer, nullable=False, server_default="0"),
    sa.Column("risky", sa.Integer, nullable=False, server_default="0"),
    sa.Column("unknown", sa.Integer, nullable=False, server_default="0"),
    sa.Column("provider", sa.String(64)),
    sa.Column("error", sa.Text),
    sa.Column("columns", sa.Text, nullable=False),
    # JSON list of the input's column names, in order.
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_until", sa.Float),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("notified_at", sa.Float),
    sa.Index("jobs_owner", "owner", "id"),
    sa.Index("jobs_status", "status"),
)

rows = sa.Table(
    "job_rows",
    metadata,
    sa.Column("job_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("row_no", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("identity", sa.Text, nullable=False),
    # The mailbox as the cache knows it (duplicates share it); `!` + the text for bad syntax.
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("domain", sa.Text),
    # ASCII domain; null when the syntax is bad.
    sa.Column("cells", sa.Text, nullable=False),
    # JSON list of the input row's cells.
    sa.Index("job_rows_identity", "job_id", "identity"),
)

addresses = sa.Table(
    "job_addresses",
    metadata,
    sa.Column("job_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    # The input row of its first occurrence: the `id` of the results.
    sa.Column("identity", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("domain", sa.Text),
    sa.Column("state", sa.String(16), nullable=False),
    # `pending`, `sent` (handed to a provider: never sent again) or `done`.
    sa.Column("stage", sa.String(16)),
    # Who answered: invalid, local, cached, provider.
    sa.Column("mail", sa.String(16)),
    # The DNS status seen by the free stage.
    sa.Column("mx", sa.Text),
    sa.Column("verdict", sa.String(16)),
    # The verdict's state (deliverable, …), for the `state` filter.
    sa.Column("result", sa.Text),
    # The verdict as JSON once known.
    sa.Column("bulk_list", sa.Integer),
    sa.Column("sent_at", sa.Float),
    sa.Index("job_addresses_work", "job_id", "state", "domain", "seq"),
    sa.Index("job_addresses_queue", "job_id", "state", "seq"),
    sa.Index("job_addresses_identity", "job_id", "identity", unique=True),
)

bulk_lists = sa.Table(
    "job_bulk_lists",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.Integer, nullable=False),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("list_id", sa.Text),
    # The provider's id, stored before the job waits on the list.
    sa.Column("status", sa.String(16), nullable=False),
    # `uploading`, `uploaded`, `stored` (results in), `deleted`, `failed`.
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Index("job_bulk_lists_job", "job_id"),
)

outbox = sa.Table(
    "webhook_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.Integer, nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", sa.Float, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("done_at", sa.Float),
    sa.Column("outcome", sa.String(16)),
    # Null while pending; `delivered` or `gave_up`.
    sa.Index("webhook_outbox_due", "outcome", "next_at"),
    sa.Index("webhook_outbox_job", "job_id", "id"),
)

V1_TABLES = (jobs, rows, addresses, bulk_lists, outbox)

# Contact enrichment (jobs of kind `enrich`): the job's own settings and counters, its contacts
# with their outcomes, and its requests to the provider (a workflow id stored before waiting).
enrich_jobs = sa.Table(
    "enrich_jobs",
    metadata,
    sa.Column("job_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("enrichment_type", sa.String(16), nullable=False),
    sa.Column("found", sa.Integer, nullable=False, server_default="0"),
    sa.Column("not_found", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
    sa.Column("emails_found", sa.Integer, nullable=False, server_default="0"),
    sa.Column("emails_rejected", sa.Integer, nullable=False, server_default="0"),
    sa.Column("phones_found", sa.Integer, nullable=False, server_default="0"),
)

enrich_contacts = sa.Table(
    "enrich_contacts",
    metadata,
    sa.Column("job_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("contact", sa.Text, nullable=False),
    # JSON: the contact as given (its known fields only).
    sa.Column("outcome", sa.String(16)),
    # Null until known: `found`, `not_found` or `failed`.
    sa.Column("row", sa.Text),
    # JSON: what was found and the RESULT of a found email, once known.
)

enrich_requests = sa.Table(
    "enrich_requests",
    metadata,
    sa.Column("job_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("start", sa.Integer, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    # `pending`; `sending` (written before the request goes: never sent twice); `sent` (the
    # workflow id is stored); `done`; `lost` (sent without an answer: its contacts failed).
    sa.Column("workflow_id", sa.Text),
    sa.Column("task_ids", sa.Text),
    # JSON list, in contact order.
    sa.Column("sent_at", sa.Float),
)

V2_TABLES = (enrich_jobs, enrich_contacts, enrich_requests)


def _v1(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(V1_TABLES))


def _v2(conn: Connection) -> None:
    metadata.create_all(conn, tables=list(V2_TABLES))
    # Workers claim by kind: a batch worker never takes an enrichment job, nor the reverse.
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS jobs_claim ON jobs (kind, status, id)"))


MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [(1, _v1), (2, _v2)]
"""Append a step for every change of the schema; never edit one that has shipped."""

LATEST = MIGRATIONS[-1][0]


def migrate(conn: Connection, now: float) -> list[int]:
    """Apply the steps not yet recorded; the versions applied. Call inside a transaction."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(4216001)"))
    conn.execute(sa.schema.CreateTable(schema_version, if_not_exists=True))
    if conn.dialect.name == "sqlite":
        # SQLite's write lock before reading what is applied: two processes sharing one data
        # dir must not both create the tables (a write that changes nothing takes the lock;
        # the other process waits for it under the busy timeout).
        conn.execute(schema_version.delete().where(sa.false()))
    done = set(conn.execute(sa.select(schema_version.c.version)).scalars())
    applied = []
    for version, step in MIGRATIONS:
        if version in done:
            continue
        step(conn)
        conn.execute(schema_version.insert().values(version=version, applied_at=now))
        applied.append(version)
    return applied
