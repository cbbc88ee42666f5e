"""What ``/help`` (F1) shows in the chat: its commands and keys, and how to get a model.

Kept apart from the chat screen, which draws it as a local reply: the words change with
the product, the screen's logic does not."""

HELP = """**Commands**

- `/TOOL key=value …` — call a plugin's tool directly (see `/plugins` for the tools)
- `/image PATH` — send an image to the plugins that take images
- `/plugins` (F2) — installed plugins: enable `e`, disable `d`, permissions `g`,
  install `i`, upgrade `u`, uninstall `x`
- `/sessions` (F3) — stored conversations: open (Enter), rename `r`, delete `x`
- `/new` (Ctrl+N) — start a new session
- `/help` (F1) — this list

**Keys**: Esc cancels the running turn; ↑/↓ walk your earlier messages; → or Tab accepts
the greyed-out completion of a command, tool, argument name or path; Ctrl+P opens the
command palette; Ctrl+Q quits.

**In the browser**: Tab to a result card, then `o` opens it as a live web page (Ctrl+P,
"Open session in browser": every card); over SSH the chat shows the URL and the `ssh -L` to
reach it.

**A model**: without one, the offline assistant answers (try `help`). Quit, then set
`ANTHROPIC_API_KEY` (Anthropic) or `OPENAI_BASE_URL` / `OPENAI_API_KEY` (any Chat
Completions server: OpenAI, Ollama, llama.cpp, vLLM) and start `deeting` again; `--model`
or `model` in `config.toml` picks the model. `deeting --help` says which would answer.
"""
