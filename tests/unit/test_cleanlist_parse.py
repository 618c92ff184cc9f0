"""Cleanlist.ai answers read leniently: unknown fields ignored, a missing find is not found."""

from __future__ import annotations

from typing import Any

import pytest

from emailgate.enrich.cleanlist import (
    Contact,
    TaskState,
    WorkflowState,
    parse_status,
    parse_submission,
    parse_task,
)
from emailgate.providers.errors import BadResponse


def test_the_documented_result_shape() -> None:
    """The reference's per-task result: primary_email, its status and phone numbers."""
    status = parse_status(
        {
            "workflow_id": "public_bulk_1",
            "status": "completed",
            "results": [
                {
                    "task_id": "t1",
                    "status": "completed",
                    "primary_email": "john.doe@acme.com",
                    "primary_email_status": "reliable",
                    "personal_phone_numbers": ["+14155550100"],
                    "prospect": {"first_name": "John"},
                    "company": {"domain": "acme.com"},
                }
            ],
            "summary": {"total": 1},
        }
    )
    assert status.state is WorkflowState.DONE
    (task,) = status.tasks
    assert (task.task_id, task.state, task.email, task.email_status, task.phones) == (
        "t1", TaskState.COMPLETED, "john.doe@acme.com", "reliable", ("+14155550100",),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("item", "email", "phones"),
    [
        ({"task_id": "t"}, None, ()),
        ({"task_id": "t", "primary_email": ""}, None, ()),
        ({"task_id": "t", "primary_email": 42, "phones": "nope"}, None, ("nope",)),
        ({"task_id": "t", "work_phone_numbers": [{"number": "+1 555"}, {"x": 1}, None]}, None,
         ("+1 555",)),
        ({"task_id": "t", "primary_phone": "+1", "phone_numbers": ["+1", "+2"]}, None,
         ("+1", "+2")),
        ({"task_id": "t", "primary_email": "  a@b.com ", "brand_new_field": {"x": 1}}, "a@b.com",
         ()),
    ],
)  # fmt: skip
def test_missing_or_odd_fields_are_not_found(
    item: dict[str, Any], email: str | None, phones: tuple[str, ...]
) -> None:
    """Whatever is missing or of another type is simply not found; nothing raises."""
    task = parse_task(item)
    assert task.email == email and task.phones == phones


def test_task_states() -> None:
    """Failed, pending and status-less tasks (done once their workflow is)."""
    assert parse_task({"status": "FAILED"}).state is TaskState.FAILED
    assert parse_task({"status": "processing"}).state is TaskState.PENDING
    assert parse_task({}).state is TaskState.COMPLETED
    assert parse_task({"id": 7}).task_id == "7"


@pytest.mark.parametrize(
    ("state", "expected"),
    [("processing", WorkflowState.WORKING), ("queued", WorkflowState.WORKING),
     ("Completed", WorkflowState.DONE), ("failed", WorkflowState.FAILED),
     ("cancelled", WorkflowState.FAILED)],
)  # fmt: skip
def test_workflow_states(state: str, expected: WorkflowState) -> None:
    """An unknown non-terminal word means the workflow is still working."""
    assert parse_status({"status": state}).state is expected


def test_a_task_query_answers_with_the_task_itself() -> None:
    """`?task_id=` answers one result object; it reads as a workflow of one task."""
    status = parse_status({"task_id": "t9", "status": "completed", "primary_email": "x@y.com"})
    assert status.tasks[0].task_id == "t9" and status.tasks[0].email == "x@y.com"


@pytest.mark.parametrize("body", [[], "ok", {"results": []}, {"status": 3}])
def test_not_a_status_answer(body: Any) -> None:
    """A body that is not an object, or has no status at all, is a BadResponse."""
    with pytest.raises(BadResponse):
        parse_status(body)


def test_submission() -> None:
    """workflow_id is required; task ids, when given, must match the contacts one to one."""
    sub = parse_submission({"workflow_id": "w", "task_ids": ["a", "b"], "extra": 1}, 2)
    assert sub.workflow_id == "w" and sub.task_ids == ("a", "b")
    assert parse_submission({"workflow_id": "w"}, 2).task_ids == ()
    with pytest.raises(BadResponse, match="3 task ids for 2 contacts"):
        parse_submission({"workflow_id": "w", "task_ids": ["a", "b", "c"]}, 2)
    with pytest.raises(BadResponse, match="no workflow_id"):
        parse_submission({"task_ids": []}, 0)


def test_contact_requirement_and_json() -> None:
    """A LinkedIn URL alone, or a full name and a company; only given fields are sent."""
    assert Contact(linkedin_url="https://www.linkedin.com/in/x").identifiable
    assert Contact(first_name="A", last_name="B", company_name="C").identifiable
    assert not Contact(first_name="A", company_domain="c.com").identifiable
    assert Contact(first_name="A", last_name="B", company_domain="c.com").to_json() == {
        "first_name": "A", "last_name": "B", "company_domain": "c.com",
    }  # fmt: skip
