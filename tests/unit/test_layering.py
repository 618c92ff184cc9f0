"""The package's layering, read from the imports themselves (ast, every import in every
module, those inside functions too): which part may import which, no cycles between parts,
and no network or cache library under the pure stages of the check."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import emailgate

PACKAGE = Path(emailgate.__file__).parent

# A part is a subpackage (`verify`, `providers`, ...) or a top-level module (`cache`, ...).
# Each part may import only the parts listed for it; everything else is a layering mistake.
# A new part gets its line here (and in docs/architecture.md's picture of the layers).
BASE = {"clock", "rate", "privacy", "log", "metrics", "lru", "redis_fallback", "__init__"}
MAY_IMPORT: dict[str, set[str]] = {
    # The bottom: plain values and tools, no dependency inside the package but the clock.
    "__init__": set(),
    "clock": set(),
    "rate": set(),
    "privacy": set(),
    "log": set(),
    "metrics": set(),
    "lru": {"clock"},
    "latency": set(),  # the interpreter tuned once serve has started (http/server.py)
    "redis_fallback": {"clock"},
    "config": {"rate", "verify"},  # verify/result.py: the provider names
    # The check itself and the interfaces it needs (verify/seams.py); no adapter in sight.
    "verify": BASE,
    # Adapters: they implement verify's interfaces.
    "pacing": BASE,
    "cache": BASE | {"verify"},
    # Redis-side upkeep: the fleet's hash key, and verdicts kept below the eviction limit.
    "hashkey": BASE,
    "redisguard": BASE | {"cache"},
    "providers": BASE | {"config", "pacing", "verify"},
    "bulk": BASE | {"config", "pacing", "providers", "verify"},
    # Contact enrichment: a provider client and an engine that checks what it finds; services
    # builds it, jobs and http use it (added to their lines below the table).
    "enrich": BASE | {"config", "pacing", "providers", "verify"},
    # Batch jobs use the check and the providers through the same interfaces, never the
    # other way round: nothing below imports jobs.
    "jobs": BASE | {"config", "pacing", "cache", "providers", "bulk", "verify"},
    # Composition: build the adapters from the settings and hand them to the pipeline.
    "services": BASE
    | {"config", "pacing", "cache", "hashkey", "redisguard", "providers", "bulk", "verify", "jobs"},
    "appkeys": BASE | {"config", "services", "jobs"},  # jobs: the typed key of the app's Jobs
    # The edge: access decides who may ask; http answers and imports access, never back.
    "access": BASE | {"config", "appkeys", "verify"},
    "http": BASE | {"config", "appkeys", "access", "verify", "services", "jobs", "latency"},
    "app": BASE
    | {
        "config",
        "appkeys",
        "access",
        "http",
        "services",
        "verify",
        "jobs",
        "cache",
        "providers",
        "bulk",
    },
    "__main__": BASE | {"config", "access", "app", "http", "services", "verify", "jobs"},
}

for _user in ("services", "jobs", "http", "app"):
    MAY_IMPORT[_user] = MAY_IMPORT[_user] | {"enrich"}

ADAPTERS = {"cache", "hashkey", "redisguard", "providers", "http", "access", "services", "bulk",
            "enrich", "jobs", "app"}  # fmt: skip
PURE_STAGES = ("syntax", "domains", "decision", "local", "result", "mail", "sandbox")
NETWORK_OR_CACHE = {"aiodns", "pycares", "aiohttp", "redis", "aiocache", "cachetools"}


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (`emailgate.verify.dns`)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path) -> Iterator[str]:
    """The dotted names `path` imports, relative imports resolved, at any depth of the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            # `from emailgate import access` imports the part `access`.
            yield from (f"{base}.{alias.name}" for alias in node.names)


def _part(dotted: str) -> str | None:
    """The part of the package a dotted name belongs to; None outside the package."""
    pieces = dotted.split(".")
    if pieces[0] != "emailgate":
        return None
    return pieces[1] if len(pieces) > 1 else "__init__"


MODULES = _modules()


def _part_edges() -> dict[tuple[str, str], list[str]]:
    """(importer part, imported part) -> the modules where that import is written."""
    edges: dict[tuple[str, str], list[str]] = {}
    for name, path in MODULES.items():
        here = _part(name)
        assert here is not None
        for target in _imports(name, path):
            there = _part(target)
            if there is None or there == here:
                continue
            if target not in MODULES and there not in {_part(m) for m in MODULES}:
                continue  # `from emailgate import __version__`: a name, not a part
            edges.setdefault((here, there), []).append(name)
    return edges


def test_every_part_has_its_place_in_the_layering() -> None:
    """A new subpackage or top-level module is placed in MAY_IMPORT before it lands."""
    parts = {_part(name) for name in MODULES}
    missing = sorted(p for p in parts if p is not None and p not in MAY_IMPORT)
    assert not missing, f"add these parts to MAY_IMPORT in {__file__}: {missing}"


def test_each_part_imports_only_the_parts_below_it() -> None:
    """No part imports a part it may not (adapters from verify/, http from access, ...)."""
    wrong = [
        f"{here} imports {there} (in {', '.join(sorted(set(where)))})"
        for (here, there), where in sorted(_part_edges().items())
        if there not in MAY_IMPORT.get(here, set())
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_between_parts() -> None:
    """No two parts of the package import each other, directly or through others."""
    graph: dict[str, set[str]] = {}
    for here, there in _part_edges():
        graph.setdefault(here, set()).add(there)
    cycles = []
    for start in sorted(graph):
        # Depth-first from `start`: reaching `start` again is a cycle through it.
        stack = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    cycles.append(" -> ".join([*trail, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert not cycles, "\n".join(cycles)


def test_the_allowed_layering_itself_has_no_cycle() -> None:
    """MAY_IMPORT is a ladder: no part may import a part that may import it back."""

    def reach(part: str) -> set[str]:
        todo, seen = [part], set()
        while todo:
            for nxt in MAY_IMPORT.get(todo.pop(), set()) - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    assert [p for p in MAY_IMPORT if p in reach(p)] == []


def test_verify_imports_no_adapter() -> None:
    """verify/ owns its interfaces: it imports none of cache, providers, http, access, services."""
    wrong = [
        f"{name} imports {target}"
        for name, path in MODULES.items()
        if name.startswith("emailgate.verify")
        for target in _imports(name, path)
        if _part(target) in ADAPTERS
    ]
    assert not wrong, "\n".join(wrong)


def _reachable(name: str) -> dict[str, str]:
    """Every module and library `name` loads, directly or through the package's own modules,
    each with the package module that imports it."""
    found: dict[str, str] = {}
    todo = [name]
    # Importing a module runs its packages' __init__ first.
    pieces = name.split(".")
    for n in range(1, len(pieces)):
        parent = ".".join(pieces[:n])
        found[parent] = name
        todo.append(parent)
    while todo:
        current = todo.pop()
        for target in _imports(current, MODULES[current]):
            if target in found:
                continue
            found[target] = current
            if target in MODULES:
                todo.append(target)
    return found


def test_pure_stages_load_no_network_or_cache_library() -> None:
    """syntax, domains, decision, local, result (and their types) load no aiodns, pycares,
    aiohttp, redis or cache library, not even through another module of the package."""
    wrong = []
    for stage in PURE_STAGES:
        name = f"emailgate.verify.{stage}"
        assert name in MODULES, f"{name} is gone: update PURE_STAGES"
        for target, via in _reachable(name).items():
            if target.split(".")[0] in NETWORK_OR_CACHE:
                wrong.append(f"{name} loads {target} (imported in {via})")
    assert not wrong, "\n".join(wrong)


def test_the_reader_of_imports_is_not_blind() -> None:
    """It finds the imports these files write, those inside a function too."""
    found = set(_imports("emailgate.verify.pipeline", MODULES["emailgate.verify.pipeline"]))
    assert "emailgate.verify.seams" in found
    found = set(_imports("emailgate.__main__", MODULES["emailgate.__main__"]))
    assert "emailgate.access" in found  # imported inside a function: still seen
    edges = _part_edges()
    assert ("http", "access") in edges and ("access", "http") not in edges
