"""The scenarios, one module each: http (1 cache hit, 2 cold path), trace (3), overload (4),
memory (5). Each exposes `async def run(bench) -> dict` returning JSON-ready figures."""
