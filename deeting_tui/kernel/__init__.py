"""The microkernel: four responsibilities, and the API both front ends use.

- **Sessions** (``sessions/``): every conversation in one SQLite file.
- **The event bus** (``bus.py``, who is offered a message in ``routing.py``, the events the
  kernel emits typed in ``events.py``).
- **Permission validation** (``permissions.py``: the grants; checked before a worker starts
  and before each call).
- **The plugin loader** (``plugins/``: install, enable, upgrade, and the administration
  service the front ends render).

``kernel.py`` is the API (``Kernel``), with its parts: a tool call from record to result
(``calls.py``, the tool table in ``tools.py``, arguments in ``arguments.py``), the assistant's
turn and a stored session read back (``conversation.py``, the port to the LLM in
``assistant.py``), and enabled plugins wired in (``wiring.py``, stream frames checked in
``streams.py``, payloads checked against their renderer in ``renderers.py``, a message's
limits in ``limits.py``).

The services the kernel uses live beside it: worker processes (``deeting_tui.workers``),
quotas (``deeting_tui.quota``) and the network proxy (``deeting_tui.netproxy``). The kernel
imports no Textual, no LLM SDK and nothing of the sandbox (``tests/test_import_rules.py``).
"""
