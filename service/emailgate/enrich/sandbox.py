"""Enrichment for test keys: deterministic, free, no provider called.

The contact decides, as the verify sandbox's local part does (first name prefix,
case-insensitive; the email found then goes through the verify sandbox, so a contact named
`Undeliverable` comes back with a found email that is rejected):

| first name   | what is found                                                         |
|--------------|-----------------------------------------------------------------------|
| (any other)  | `first.last@company_domain` (company_name + `.com` without a domain;  |
|              | `slug@example.com` from a LinkedIn URL alone); a phone for           |
|              | `phone_only`/`full`                                                   |
| `nobody…`    | nothing                                                               |
| `failtask…`  | the task fails                                                        |
| `nophone…`   | no phone                                                              |

`none` finds nothing, `partial` only emails, `phone_only` only phones, `full` both.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Sequence

from emailgate.enrich.cleanlist import (
    Contact,
    Submission,
    TaskResult,
    TaskState,
    WorkflowState,
    WorkflowStatus,
)


class SandboxSource:
    """An `EnrichSource` that answers at once from the contact's own fields."""

    name = "sandbox"

    def __init__(self) -> None:
        self._workflows: dict[str, tuple[Sequence[Contact], str]] = {}
        self._count = 0

    async def submit(self, contacts: Sequence[Contact], enrichment_type: str) -> Submission:
        """A workflow that has finished already; its contacts kept until polled."""
        self._count += 1
        workflow_id = f"sandbox_{self._count:06d}_{os.urandom(3).hex()}"
        self.remember(workflow_id, contacts, enrichment_type)
        return Submission(workflow_id, tuple(f"{workflow_id}_{i}" for i in range(len(contacts))))

    def remember(self, workflow_id: str, contacts: Sequence[Contact], enrichment_type: str) -> None:
        """A workflow submitted before (a resumed job): its results are the same again."""
        self._workflows[workflow_id] = (contacts, enrichment_type)

    async def status(self, workflow_id: str) -> WorkflowStatus:
        """The workflow's results (it finished when it was submitted)."""
        known = self._workflows.pop(workflow_id, None)
        if known is None:
            return WorkflowStatus(WorkflowState.FAILED, (), "gone")
        contacts, kind = known
        tasks = tuple(sandbox_result(f"{workflow_id}_{i}", c, kind) for i, c in enumerate(contacts))
        return WorkflowStatus(WorkflowState.DONE, tasks)


def sandbox_result(task_id: str, contact: Contact, enrichment_type: str) -> TaskResult:
    """The deterministic result of one contact."""
    first = (contact.first_name or "").strip().lower()
    if first.startswith("failtask"):
        return TaskResult(task_id, TaskState.FAILED)
    if first.startswith("nobody") or enrichment_type == "none":
        return TaskResult(task_id, TaskState.COMPLETED)
    email = _email(contact) if enrichment_type in ("partial", "full") else None
    phones: tuple[str, ...] = ()
    if enrichment_type in ("phone_only", "full") and not first.startswith("nophone"):
        digits = zlib.crc32((_email(contact)).encode()) % 10_000_000
        phones = (f"+1555{digits:07d}",)
    return TaskResult(task_id, TaskState.COMPLETED, email, "sandbox" if email else None, phones)


def _slug(text: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "", (text or "").lower())


def _email(c: Contact) -> str:
    domain = (c.company_domain or "").strip().lower()
    if not domain and c.company_name:
        domain = _slug(c.company_name) + ".com"
    first, last = _slug(c.first_name), _slug(c.last_name)
    if first and last and domain:
        return f"{first}.{last}@{domain}"
    slug = _slug((c.linkedin_url or "").rstrip("/").rpartition("/")[2]) or "someone"
    return f"{slug}@{domain or 'example.com'}"
