"""Who may use batch jobs: private keys (and anyone when the service runs open); test keys get
sandbox jobs; public keys are refused; a key sees only its own jobs; uploads are limited per
key."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.jobs.helpers import Client, wait_status

MakeClient = Callable[..., Awaitable[Client]]
BATCH = "/api/v1/batch"
PRIVATE, OTHER, TEST, PUBLIC = "sk_batch_one", "sk_batch_two", "tk_batch", "pk_batch"
SHOP = "https://shop.example"


def keys(tmp_path: Path) -> Path:
    def entry(name: str, kind: str, key: str, extra: str = "") -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f'[[key]]\nname = "{name}"\nkind = "{kind}"\nsha256 = "{digest}"\n{extra}\n'

    path = tmp_path / "keys.toml"
    path.write_text(
        entry("crm", "private", PRIVATE) + entry("billing", "private", OTHER)
        + entry("integration", "test", TEST)
        + entry("form", "public", PUBLIC, f'origins = ["{SHOP}"]')
    )  # fmt: skip
    return path


async def test_public_keys_are_refused(make_client: MakeClient, tmp_path: Path) -> None:
    """A public key gets 403 on every batch path, from its own origin too."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys(tmp_path)))
    headers = {"X-API-Key": PUBLIC, "Origin": SHOP}
    response = await client.post(BATCH, json={"emails": ["a@good.com"]}, headers=headers)
    assert response.status == 403
    assert (await client.get(BATCH, headers=headers)).status == 403
    assert (await client.get(f"{BATCH}/1", headers=headers)).status == 403


async def test_no_key_is_401(make_client: MakeClient, tmp_path: Path) -> None:
    """With a keys file, a batch request without a key is 401."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys(tmp_path)))
    assert (await client.post(BATCH, json={"emails": ["a@good.com"]})).status == 401


async def test_a_key_sees_only_its_own_jobs(make_client: MakeClient, tmp_path: Path) -> None:
    """Another private key's job is a 404 (status, download, start, delete) and not listed."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys(tmp_path)))
    mine = {"X-API-Key": PRIVATE}
    theirs = {"Authorization": f"Bearer {OTHER}"}
    response = await client.post(BATCH, json={"emails": ["a@good.com"]}, headers=mine)
    assert response.status == 201
    job_id = (await response.json())["data"]["id"]
    await wait_status(client, job_id, headers=mine)
    for method, path in (
        ("GET", f"{BATCH}/{job_id}"),
        ("GET", f"{BATCH}/{job_id}/download"),
        ("POST", f"{BATCH}/{job_id}/start"),
        ("DELETE", f"{BATCH}/{job_id}"),
    ):
        response = await client.request(method, path, headers=theirs)
        assert response.status == 404, (method, path)  # fmt: skip
    listed = await (await client.get(BATCH, headers=theirs)).json()
    assert listed["data"] == []
    mine_listed = await (await client.get(BATCH, headers=mine)).json()
    assert [j["id"] for j in mine_listed["data"]] == [job_id]


async def test_test_keys_run_in_the_sandbox(make_client: MakeClient, tmp_path: Path) -> None:
    """A test key's job answers from the sandbox: the local part decides, nothing is paid."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys(tmp_path)))
    headers = {"X-API-Key": TEST}
    emails = ["deliverable.a@good.com", "undeliverable.b@good.com", "risky.c@gone.com", "bad"]
    response = await client.post(BATCH, json={"emails": emails}, headers=headers)
    assert response.status == 201
    done = await wait_status(client, (await response.json())["data"]["id"], headers=headers)
    states = {d["email"]["email_address"]: (d["email"]["state"], d["email"]["source"])
              for d in done["data"]}  # fmt: skip
    assert states["deliverable.a@good.com"] == ("deliverable", "sandbox")
    assert states["undeliverable.b@good.com"] == ("undeliverable", "sandbox")
    assert states["risky.c@gone.com"] == ("risky", "sandbox")
    assert states["bad"] == ("undeliverable", "local")
    assert done["job"]["credits_spent"] == 0 and done["job"]["billable"] == 0


async def test_uploads_are_limited_per_key(make_client: MakeClient, tmp_path: Path) -> None:
    """The seventh upload in a minute is a 429 with Retry-After and stores nothing; another
    key still uploads."""
    client = await make_client(EMAILGATE_API_KEYS_FILE=str(keys(tmp_path)))
    mine = {"X-API-Key": PRIVATE}
    for _ in range(6):
        response = await client.post(BATCH, json={"emails": ["a@good.com"]}, headers=mine)
        assert response.status == 201
    refused = await client.post(BATCH, json={"emails": ["a@good.com"]}, headers=mine)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    listed = await (await client.get(BATCH, headers=mine)).json()
    assert len(listed["data"]) == 6
    other = await client.post(BATCH, json={"emails": ["a@good.com"]},
                              headers={"X-API-Key": OTHER})  # fmt: skip
    assert other.status == 201
