"""``deeting plugin new NAME``: a working plugin to start from.

The scaffold is a teaching example as much as a template, so it uses every file of the package
contract once, and it is checked by the same checker as any plugin (a test makes sure).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from .names import PLUGIN_NAME_RE

__all__ = ["scaffold"]


_TOOLS = """\
# The tools the model may call, in OpenAI's function-calling shape (one tool, or a list).
- name: hello
  description: Greet someone by name.
  parameters:
    type: object
    properties:
      name:
        type: string
        description: Who to greet.
    required: [name]
"""

_EXAMPLES = """\
# Example calls: `python ci/smoke.py {name}` runs each in the sandboxed worker and checks the
# result (the registry's CI refuses a plugin with a tool no example calls).
- tool: hello
  arguments: {{name: Ada}}
  expect: {{summary_contains: "Hello, Ada!"}}
"""

_INDEX = '''\
"""The {name} plugin. The kernel calls invoke() when the model (or a trigger) uses a tool."""

from deeting_tui.sdk import Result


def invoke(ctx, tool, args):
    if tool == "hello":
        greeting = f"Hello, {{args['name']}}!"
        return Result(data={{"greeting": greeting}}, text=greeting)
    raise ValueError(f"{name} has no tool {{tool!r}}")
'''

_README = """\
# {name}

A Deeting plugin. Try it: type `hello Ada` in the chat, or ask the assistant to greet someone.

- `kimai.json`: the manifest (permissions, trigger, renderer, events)
- `llm-tool.yaml`: the tools the model can call
- `src/index.py`: the code; `invoke(ctx, tool, args)` returns a `Result`
- `examples.yaml`: example calls, run by `python ci/smoke.py {name}` in the real sandbox

Check it with `python ci/lint.py {name}`, `python ci/scan.py {name}` and
`python ci/smoke.py {name}`; install it with `deeting plugin install ./{name}`.
"""


def scaffold(name: str, dest: Path) -> Path:
    """Write a new plugin folder at ``dest`` and return it; refuses to overwrite anything."""
    if not isinstance(name, str) or not PLUGIN_NAME_RE.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid plugin name: use lowercase letters, digits and '-', "
            "starting with a letter or digit, at most 64 characters (like my-plugin)"
        )
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"{dest} already exists and is not empty; choose a new folder")
    existed = dest.exists()
    try:
        for rel, text in _files(name).items():
            path = dest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    except OSError:
        _remove_what_we_made(dest, existed)  # a failure half way (a full disk) leaves nothing
        raise
    return dest


def _remove_what_we_made(dest: Path, existed: bool) -> None:
    """``dest`` was empty or absent before: take away everything now in it (or it)."""
    with contextlib.suppress(OSError):
        for made in list(dest.iterdir()) if existed else [dest]:
            if made.is_dir() and not made.is_symlink():
                shutil.rmtree(made, ignore_errors=True)
            else:
                made.unlink(missing_ok=True)


def _files(name: str) -> dict[str, str]:
    meta = {"name": name, "version": "0.1.0", "description": f"The {name} plugin"}
    package = {**meta, "author": "", "license": "MIT"}
    kimai = {
        **meta,
        "permissions": [],
        "trigger": {
            "regex": "^hello (?P<name>.+)$",
            "tool": "hello",
            "priority": 50,
            "examples": ["hello world"],
        },
    }
    return {
        "package.json": _json(package),
        "kimai.json": _json(kimai),
        "llm-tool.yaml": _TOOLS,
        "examples.yaml": _EXAMPLES.format(name=name),
        "src/index.py": _INDEX.format(name=name),
        "README.md": _README.format(name=name),
    }


def _json(document: Mapping[str, object]) -> str:
    return json.dumps(document, indent=2) + "\n"
