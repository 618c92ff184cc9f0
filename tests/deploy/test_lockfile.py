"""requirements/runtime.lock.txt: every runtime dependency pinned, hashed and closed over.

The image installs it with `pip install --require-hashes`, which refuses a lock with a line
without a hash or a dependency it does not list; these tests find such a lock before a build.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements/runtime.lock.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)$")
HASH = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")
# The image's platform: CPython 3.11 on Linux (x86_64 or aarch64).
IMAGE_ENV = default_environment() | {
    "python_version": "3.11", "python_full_version": "3.11.9", "sys_platform": "linux",
    "platform_system": "Linux", "os_name": "posix", "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
}  # fmt: skip


def locked() -> dict[str, tuple[Version, list[str], list[str]]]:
    """name -> (version, hashes, `via` names) for every requirement of the lock."""
    entries: dict[str, tuple[Version, list[str], list[str]]] = {}
    current: str | None = None
    for logical in re.sub(r"\\\n", " ", LOCK.read_text()).splitlines():
        stripped = logical.strip()
        if stripped.startswith("#"):
            via = stripped.lstrip("#").strip()
            if current is not None and via:
                via = via.removeprefix("via").strip()
                if via:
                    entries[current][2].append(via)
            continue
        if not stripped:
            continue
        spec, *options = stripped.split()
        match = PIN.match(spec)
        assert match, f"not a name==version pin: {stripped[:80]}"
        bad = [o for o in options if not HASH.match(o)]
        assert not bad, f"{spec}: options other than sha256 hashes: {bad}"
        current = canonicalize_name(match[1])
        assert current not in entries, f"{current} is pinned twice"
        entries[current] = (Version(match[2]), options, [])
    return entries


def runtime_requirements() -> list[Requirement]:
    """[project].dependencies of pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"]]


def test_every_line_is_an_exact_pin_with_hashes() -> None:
    """Each entry is name==version with at least one sha256 hash; nothing else is in the file
    (no index URL, no path, no link: only the public index's own files are accepted)."""
    entries = locked()
    assert len(entries) >= 9
    for name, (_, hashes, _) in entries.items():
        assert hashes, f"{name} has no hash"
    text = LOCK.read_text()
    assert "://" not in text
    assert not re.search(r"^\s*-(i|f|-index-url|-extra-index-url|-find-links|e)\b", text, re.M)


def test_lock_covers_every_runtime_dependency() -> None:
    """Every dependency in pyproject.toml is locked, at a version its specifier allows."""
    entries = locked()
    for req in runtime_requirements():
        name = canonicalize_name(req.name)
        assert name in entries, f"{req.name} (pyproject.toml) is not in the lock"
        version = entries[name][0]
        assert req.specifier.contains(version, prereleases=True), f"{name}=={version} vs {req}"


def test_lock_is_closed_under_dependencies() -> None:
    """What each locked package needs on the image's platform is locked too (checked from the
    package metadata installed here, for packages installed at the locked version)."""
    entries = locked()
    checked = 0
    for name, (version, _, _) in entries.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Version(dist.version) != version:
            continue
        checked += 1
        for raw in dist.requires or []:
            req = Requirement(raw)
            if req.marker is not None and not req.marker.evaluate(IMAGE_ENV | {"extra": ""}):
                continue
            dep = canonicalize_name(req.name)
            assert dep in entries, f"{name} needs {req}, which is not locked"
            assert req.specifier.contains(entries[dep][0], prereleases=True), (name, str(req))
    # The check means something only if most of the lock is installed at its version here.
    assert checked >= len(entries) // 2, f"only {checked} of {len(entries)} packages checked"


def test_via_comments_name_locked_packages_or_the_project() -> None:
    """pip-compile's `via` notes only name locked packages or the project itself."""
    entries = locked()
    for name, (_, _, vias) in entries.items():
        assert vias, f"{name} says nobody needs it"
        for via in vias:
            if via.startswith("emailgate"):
                continue
            assert canonicalize_name(via) in entries, f"{name} via {via}"
