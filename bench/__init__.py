"""Deeting's benchmark: ``python -m bench`` (from the repository root).

One run measures the invoke round trip through the Supervisor against two floors (a raw
NDJSON echo over an os.pipe, asyncio and blocking) and against the ``mcp`` SDK over stdio,
worker start-to-ready per launcher, and trigger-routed throughput of ``deeting --script``
with sessions persisted, and prints each figure with PASS/FAIL against its target.
"""
