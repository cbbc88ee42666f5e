"""A plugin's data that does not fit its renderer's payload schema is an error card."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
from support import FAST_POLICY, FIXTURES, events_of

from deeting_tui.kernel.kernel import Kernel
from deeting_tui.kernel.renderers import CORE_RENDERERS, PayloadSchemas
from deeting_tui.llm.offline import OfflineAssistant
from deeting_tui.paths import resolve_paths
from deeting_tui.plugin import checker


def _renderers(tmp_path: Path) -> Path:
    folder = tmp_path / "renderers"
    (folder / "sum-card").mkdir(parents=True)
    schema = {
        "type": "object",
        "properties": {"sum": {"type": "integer"}},
        "required": ["sum"],
    }
    (folder / "sum-card" / "schema.json").write_bytes(orjson.dumps(schema))
    (folder / "broken").mkdir()
    (folder / "broken" / "schema.json").write_text("{not json")
    return folder


def test_payload_schemas(tmp_path: Path) -> None:
    schemas = PayloadSchemas([_renderers(tmp_path)])
    assert schemas.problem("sum-card", {"sum": 5}) is None
    assert schemas.problem("sum-card", {"sum": 5.5}) == (
        "data does not fit the 'sum-card' renderer: sum: 5.5 is not of type 'integer'"
    )
    assert "'sum' is a required property" in (schemas.problem("sum-card", {}) or "")
    assert schemas.problem("no-schema-here", {"anything": 1}) is None
    assert schemas.problem(None, {"x": 1}) is None and schemas.problem("sum-card", None) is None
    assert schemas.problem("../escape", {}) is None
    assert "renderer's" in (schemas.problem("broken", {}) or "") and "is broken" in (
        schemas.problem("broken", {}) or ""
    )


async def test_unfit_data_is_an_error_card_and_the_kernel_goes_on(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The manifest may name only a core renderer: this kernel's renderers are the test's.
    monkeypatch.setattr(checker, "core_renderer_names", lambda: frozenset({"sum-card"}))
    plugin = tmp_path / "good"
    shutil.copytree(FIXTURES / "good_plugin", plugin)
    kimai = orjson.loads((plugin / "kimai.json").read_bytes())
    kimai["renderer"] = "sum-card"
    (plugin / "kimai.json").write_bytes(orjson.dumps(kimai))
    kernel = Kernel(
        resolve_paths(),
        assistant=OfflineAssistant(),
        policy=FAST_POLICY,
        payload_schemas=PayloadSchemas([_renderers(tmp_path)]),
    )
    await kernel.start(ticker=False)
    try:
        report = await kernel.loader.install(plugin)
        assert report.enabled, report.problem
        session = kernel.open_session()
        seen = events_of(kernel)
        fits = await kernel.submit(session.id, "/add a=2 b=3")
        assert not fits.failed
        unfit = await kernel.submit(session.id, "/add a=2 b=3.5")  # 5.5 is no integer
        assert unfit.failed
        results = [e for e in seen if e["type"] == "tool_result"]
        assert "renderer_error" not in results[0]
        assert results[1]["renderer_error"].startswith("data does not fit the 'sum-card'")
        errors = [e["message"] for e in seen if e["type"] == "error"]
        assert errors == [
            "add: data does not fit the 'sum-card' renderer: sum: 5.5 is not of type 'integer'"
        ]
    finally:
        await kernel.shutdown()


def test_a_payload_nested_too_deeply_to_quote_is_said_not_raised() -> None:
    """jsonschema quotes the value that fails, and a value nested a thousand deep is past
    Python's recursion limit: the answer is a sentence, not a RecursionError in the kernel."""
    nested: list[object] = []
    for _ in range(1000):
        nested = [nested]
    problem = PayloadSchemas().problem("chart", {"series": [{"values": nested}]})
    assert problem == "data does not fit the 'chart' renderer: it is nested too deeply"


def test_fitting_and_unfitting_payloads_agree_with_the_full_validator() -> None:
    """The fast check (jsonschema-rs) and the one that words the problem (jsonschema) say the
    same of each renderer's example and of a broken copy of it."""
    import jsonschema

    for folder in sorted(p for p in CORE_RENDERERS.iterdir() if (p / "example.json").is_file()):
        schema = orjson.loads((folder / "schema.json").read_bytes())
        full = jsonschema.validators.validator_for(schema)(schema)
        example = orjson.loads((folder / "example.json").read_bytes())
        assert PayloadSchemas().problem(folder.name, example) is None
        broken = [] if isinstance(example, dict) else {"text": 1}
        assert (PayloadSchemas().problem(folder.name, broken) is None) == full.is_valid(broken)
