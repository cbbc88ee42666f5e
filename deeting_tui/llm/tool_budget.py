"""A tool budget: which tool specs one model call carries when many plugins are installed.

With a handful of plugins every spec is sent, sorted by name, exactly as before. Past that
(more than :data:`ALL_TOOLS_MAX` specs, or more than :data:`ALL_TOKENS_MAX` estimated
tokens) a call carries a bounded set instead:

* the tools most relevant to the user's message (a BM25 ranker over each tool's name,
  description, parameter names and descriptions, plugin name and description and trigger
  examples; light stemming and a small table of everyday synonyms),
* the tools called recently in the session (read from its stored ``tool_call`` events, so
  a resumed session keeps them),
* and ``find_tools`` (:data:`FIND_TOOLS`), a meta-tool the agent answers itself: it searches
  the tools not sent and makes the ones it finds callable in the following model calls of
  the same turn.

The thresholds: a typical plugin tool spec is 60-150 tokens, so :data:`ALL_TOOLS_MAX` (24
specs) and :data:`ALL_TOKENS_MAX` (4,000 tokens) are what five to ten everyday plugins
cost. Below that a bounded set saves a few hundred tokens at most, while a tool left out
costs a whole extra model call (``find_tools``) — so everything is sent. Above it the
bounded set is at most :data:`RELEVANT_TOOLS` + :data:`RECENT_TOOLS` specs within
:data:`SELECTED_TOKENS` tokens, plus ``find_tools``.

Order is deterministic so provider-side prompt caching holds: ``find_tools`` first (the one
spec every budgeted call shares), then the chosen tools sorted by their model-facing name.

Tokens are an offline estimate (:func:`spec_tokens`): the UTF-8 bytes of the spec's compact
JSON (name, description, parameters: what both APIs send, less their few wrapper keys),
divided by 4 — the usual bytes-per-token of English text and JSON for both vendors'
tokenizers. It is a measure for comparing sets, not a bill.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from deeting_tui.kernel.assistant import ToolInfo

from .model import ToolSpec
from .tools import Toolbox, build_toolbox, safe_name

__all__ = [
    "ALL_TOKENS_MAX",
    "ALL_TOOLS_MAX",
    "FIND_RESULTS",
    "FIND_TOOLS",
    "RECENT_TOOLS",
    "RELEVANT_TOOLS",
    "SELECTED_TOKENS",
    "Budget",
    "ToolIndex",
    "recent_tools",
    "spec_tokens",
]

#: The meta-tool's model-facing name. Plugin tool names may take any ``[A-Za-z0-9_-]``
#: name, so none is free by itself: while the meta-tool is sent, the name is reserved in
#: the toolbox and a plugin tool that cleans up to it is sent as ``find_tools_2``.
FIND_TOOLS = "find_tools"
ALL_TOOLS_MAX = 24
ALL_TOKENS_MAX = 4000
RELEVANT_TOOLS = 8
RECENT_TOOLS = 4
SELECTED_TOKENS = 1500
FIND_RESULTS = 8
#: What of a tool's text is indexed: a huge description neither slows the ranker down nor
#: (with BM25's length normalisation) ranks first for every query.
INDEX_CHARS = 4000
FIND_LINE_CHARS = 160

FIND_SPEC = ToolSpec(
    FIND_TOOLS,
    "Search the other installed tools by what they do. Only some tools are listed here; "
    "when none of them fits the request, call this with what the user wants done, then "
    "call the tool it finds (its matches become callable in your next step).",
    {
        "type": "object",
        "properties": {
            "query": {
                "type": "string",
                "description": "what the user wants done, in a few words",
            }
        },
        "required": ["query"],
    },
)


def spec_tokens(spec: ToolSpec) -> int:
    """The estimated tokens of one spec (see the module docstring)."""
    data = {"name": spec.name, "description": spec.description, "parameters": spec.parameters}
    return max(1, len(orjson.dumps(data)) // 4)


# -- the ranker ------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z]+|[0-9]+")  # "sha256" and "SHA-256" meet as sha, 256
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_STOP = frozenset(
    str.split(
        "a an the and or of to in on at for from by with into is are be was were it its this that "
        "these those my me i you your we our can could would should will please what which who "
        "how when where do does did get give show tell make let about as if than then so just "
        "some any all out there here have has had now want need like whats s t"
    )
)
#: Everyday words for the same thing, folded onto one term on both sides (query and tool).
#: General vocabulary, not the names of particular plugins: units, currencies, file kinds.
_SYNONYMS = {
    # weather
    "forecast": "weather", "rain": "weather", "temperature": "weather", "umbrella": "weather",
    "sunny": "weather", "cold": "weather", "hot": "weather", "warm": "weather",
    "snow": "weather", "wind": "weather", "sun": "sunrise", "sunset": "sunrise",
    # money
    "money": "currency", "dollar": "currency", "euro": "currency", "yen": "currency",
    "pound": "currency", "exchange": "currency", "fx": "currency", "usd": "currency",
    "eur": "currency", "gbp": "currency", "jpy": "currency", "chf": "currency",
    "cad": "currency", "aud": "currency", "cny": "currency", "inr": "currency",
    "spent": "expense", "spend": "expense", "cost": "expense", "paid": "expense",
    "mortgage": "loan", "saving": "save", "crypto": "cryptocurrency",
    "bitcoin": "cryptocurrency", "btc": "cryptocurrency", "eth": "cryptocurrency",
    "ether": "cryptocurrency", "stock": "market", "ticker": "market",
    # time
    "alarm": "timer", "countdown": "timer", "remind": "reminder", "clock": "time",
    "timezone": "time", "tz": "time", "hour": "time", "until": "between",
    "meeting": "event", "appointment": "event", "lunch": "event", "dinner": "event",
    "schedule": "calendar", "agenda": "calendar", "reschedule": "move", "postpone": "move",
    "finish": "complete", "done": "complete", "tick": "complete",
    "todo": "task", "chore": "task",
    # files and text
    "delete": "remove", "erase": "remove", "rm": "remove", "trash": "remove", "rid": "remove",
    "duplicate": "copy", "rename": "move", "big": "size", "large": "size",
    "find": "search", "lookup": "search", "look": "search", "locate": "search",
    "grep": "search", "mention": "search", "directory": "folder", "dir": "folder",
    "doc": "document", "memo": "note", "jot": "note", "caps": "upper", "uppercase": "upper",
    "lowercase": "lower", "tldr": "summarize", "summarise": "summarize",
    "summary": "summarize", "zip": "archive", "tar": "archive", "compress": "archive",
    "unzip": "archive", "unpack": "archive", "extract": "archive",
    # maths
    "calculate": "math", "compute": "math", "arithmetic": "math", "equation": "math",
    "integral": "integrate", "differentiate": "derivative", "factor": "factors",
    "average": "mean", "far": "distance",
    # computers
    "cpu": "processor", "ram": "memory", "disk": "storage", "space": "storage",
    "web": "http", "url": "http", "website": "http", "site": "http", "download": "fetch",
    "ping": "network", "ip": "network", "dns": "network", "wifi": "network",
    "reach": "ping", "down": "up", "outage": "up", "offline": "up",
    "db": "database", "sql": "database", "upgrade": "outdated", "tidy": "format",
    "javascript": "code", "python": "code", "js": "code", "script": "code",
    "crash": "error", "fault": "error", "exception": "error", "traceback": "error",
    "password": "secret", "passphrase": "secret", "login": "secret",
    "commit": "git", "branch": "git", "repo": "git", "repository": "git", "origin": "remote",
    "bug": "issue", "pr": "pull", "prs": "pull",
    # language, media, places
    "translate": "translation", "language": "translation", "spanish": "translation",
    "french": "translation", "german": "translation", "japanese": "translation",
    "mail": "email", "inbox": "email",
    "song": "music", "track": "music", "playlist": "music", "album": "music",
    "photo": "image", "picture": "image", "pic": "image", "screenshot": "screen",
    "film": "movie", "star": "cast", "actor": "cast", "cinema": "showtime",
    "funny": "joke", "laugh": "joke", "readable": "accessibility", "legible": "accessibility",
    "colour": "color", "white": "color", "black": "color", "grey": "color", "gray": "color",
    "licence": "license", "gpl": "license", "mit": "license", "apache": "license",
    "bus": "transit", "train": "transit", "tram": "transit", "subway": "transit",
    "metro": "transit", "package": "parcel", "delivery": "parcel",
    "km": "unit", "mile": "unit", "kilometer": "unit", "kilometre": "unit", "meter": "unit",
    "metre": "unit", "feet": "unit", "foot": "unit", "inch": "unit", "celsius": "unit",
    "fahrenheit": "unit", "kg": "unit", "lb": "unit", "oz": "unit", "ounce": "unit",
    "gallon": "unit", "liter": "unit", "litre": "unit", "mph": "unit",
    # a terminal user's verbs
    "cat": "read", "less": "read", "ls": "list", "curl": "http", "https": "http", "wget": "http",
    "df": "storage", "du": "storage", "drive": "storage", "ssd": "storage", "full": "storage",
    "top": "process", "htop": "process", "ps": "process", "mv": "move", "cp": "copy",
    "mkdir": "folder", "google": "search", "bing": "search", "online": "web",
    # everyday words
    "busy": "calendar", "headline": "news", "happening": "news", "listen": "music",
    "trading": "market", "nasdaq": "market", "nyse": "market", "shares": "market",
    "ethereum": "cryptocurrency", "solana": "cryptocurrency", "dogecoin": "cryptocurrency",
    "pharmacy": "place", "restaurant": "place", "cafe": "place", "coffee": "place",
    "bar": "place", "atm": "place", "supermarket": "place", "hospital": "place",
    "close": "near", "nearest": "near", "nearby": "near",
    "bundesliga": "league", "nba": "league", "nfl": "league", "mlb": "league",
    "standing": "league", "fixture": "schedule",
}  # fmt: skip
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ers", "er", "ed", "es", "ly", "s")
#: What a word's shape says: a file name's extension, an address, a flight number, a
#: cron line. Each match adds its terms to the text's.
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\w\.(?:txt|md|py|js|ts|c|h|rs|go|json|ya?ml|toml|ini|cfg|log|docx?)\b"), "file"),
    (re.compile(r"\w\.(?:csv|tsv|xlsx?)\b"), "file csv"),
    (re.compile(r"\w\.pdf\b"), "file pdf"),
    (re.compile(r"\w\.(?:jpe?g|png|gif|webp|heic|bmp|tiff?)\b"), "file image"),
    (re.compile(r"\w\.(?:mp4|mov|mkv|avi|webm)\b"), "file video"),
    (re.compile(r"\w\.(?:mp3|m4a|wav|flac|ogg|opus)\b"), "file audio"),
    (re.compile(r"\w\.(?:zip|tar|gz|tgz|7z|rar|xz)\b"), "file archive"),
    (re.compile(r"(?:^|\s)(?:~|\.{1,2})?/\w"), "path"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b"), "ip network host"),
    (re.compile(r"\b[a-z0-9-]+\.(?:com|org|net|io|dev|local|co|uk|de|fr)\b"), "domain host"),
    (re.compile(r"\b[A-Z]{2}\d{2,4}\b"), "flight"),
    (re.compile(r"(?:\*|\d+)(?:/\d+)?(?:\s+(?:\*|\d+)(?:/\d+)?){4}"), "cron"),
    (re.compile(r"\d\s*%"), "percentage math"),
    (re.compile(r"[\w)]\s*(?:[-+*/^]|\*\*)\s*[\w(]"), "math"),
    (re.compile(r"\b[a-z]\s*(?:\^\s*\d+)?\s*[-+*/]?[^=\n]*=\s*-?\d"), "equation"),
)
#: Phrases that mean one thing (before stop words take their pieces).
_PHRASES = (
    (re.compile(r"\bto[ -]?dos?\b"), " todo "),
    (re.compile(r"\btl;?dr\b"), " summarize "),
    (re.compile(r"\bsun ?(?:set|rise)s?\b"), " sunrise "),
    (re.compile(r"\bhow (?:far|long to drive)\b"), " distance "),
    (re.compile(r"\bheads or tails\b"), " coin flip "),
)


def _strip(word: str) -> str:
    """A light stemmer: "converting", "converts", "converted" and "convert" meet on "convert",
    "scores" and "score" on "scor" (a final e goes: "change" and "changed" meet too)."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            if suffix == "es" and not word.endswith(("sses", "xes", "zes", "ches", "shes")):
                suffix = "s"
            if suffix == "s" and word.endswith("ss"):
                break
            word = word[: -len(suffix)] + ("y" if suffix == "ies" else "")
            break
    return word[:-1] if len(word) > 3 and word.endswith("e") else word


_FOLD = {_strip(word): _strip(same) for word, same in _SYNONYMS.items()}


def _stem(word: str) -> str:
    """The term of a word: stemmed, then its synonym's term, if it has one."""
    stem = _strip(word)
    return _FOLD.get(word) or _FOLD.get(stem, stem)


def terms(text: str) -> list[str]:
    """The ranker's terms of a text: words split at ``_``, ``-``, case changes, digits and
    punctuation, lower-cased, stop words out, stemmed, synonyms folded; plus what the
    shapes of its words say (:data:`_SHAPES`)."""
    text = text[:INDEX_CHARS]
    extra = [words for shape, words in _SHAPES if shape.search(text)]
    text = _CAMEL.sub(" ", text).lower()
    for phrase, replacement in _PHRASES:
        text = phrase.sub(replacement, text)
    words = [w for w in _WORD.findall(text) if w not in _STOP]
    words += " ".join(extra).split()
    return [_stem(w) for w in words]


def _tool_text(tool: ToolInfo) -> tuple[str, str]:
    """(the heavily weighted part: name and plugin, the rest: what the tool says of itself)."""
    head = f"{tool.name} {tool.plugin}"
    parts = [tool.description, tool.plugin_description, *tool.trigger_examples]
    properties = tool.parameters.get("properties") if isinstance(tool.parameters, dict) else None
    if isinstance(properties, dict):
        for key, schema in properties.items():
            parts.append(str(key))
            if isinstance(schema, dict):
                parts.append(str(schema.get("description", "")))
                enum = schema.get("enum")
                if isinstance(enum, list):
                    parts.extend(str(v) for v in enum[:20])
    return head, " ".join(parts)[:INDEX_CHARS]


NAME_WEIGHT = 3
K1 = 1.2
B = 0.75


@dataclass
class ToolIndex:
    """A BM25 index over a set of tools, built once per tool set (see :func:`index_for`)."""

    tools: tuple[ToolInfo, ...]
    postings: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    #: Every spec as sent without a budget (tools.py), and their estimated tokens.
    everything: Toolbox = field(default_factory=lambda: Toolbox((), {}))
    all_tokens: int = 0

    @classmethod
    def build(cls, tools: Sequence[ToolInfo]) -> ToolIndex:
        index = cls(tuple(tools), everything=build_toolbox(tools))
        index.all_tokens = sum(spec_tokens(s) for s in index.everything.specs)
        counts: list[Counter[str]] = []
        for tool in index.tools:
            head, body = _tool_text(tool)
            count: Counter[str] = Counter(terms(body))
            for term in terms(head):
                count[term] += NAME_WEIGHT
            counts.append(count)
        lengths = [sum(c.values()) for c in counts]
        average = (sum(lengths) / len(lengths)) if lengths else 1.0
        frequency: Counter[str] = Counter()
        for count in counts:
            frequency.update(count.keys())
        n = len(counts)
        for i, count in enumerate(counts):
            norm = K1 * (1 - B + B * lengths[i] / (average or 1.0))
            for term, tf in count.items():
                idf = math.log(1 + (n - frequency[term] + 0.5) / (frequency[term] + 0.5))
                weight = idf * tf * (K1 + 1) / (tf + norm)
                index.postings.setdefault(term, []).append((i, weight))
        return index

    def rank(self, query: str, *, exclude: Iterable[str] = ()) -> list[ToolInfo]:
        """The tools matching ``query``, best first (ties by name), less those in ``exclude``."""
        scores: dict[int, float] = {}
        for term in set(terms(query)):
            for i, weight in self.postings.get(term, ()):
                scores[i] = scores.get(i, 0.0) + weight
        skip = set(exclude)
        ranked = sorted(scores, key=lambda i: (-scores[i], self.tools[i].name))
        return [self.tools[i] for i in ranked if self.tools[i].name not in skip]


_cache: tuple[list[tuple[Any, ...]], ToolIndex] | None = None


def index_for(tools: Sequence[ToolInfo]) -> ToolIndex:
    """The index of ``tools``, rebuilt only when the set changes (one entry: the kernel's
    tools change on install, not per turn)."""
    global _cache
    key = [
        (t.name, t.plugin, t.description, t.parameters, t.plugin_description, t.trigger_examples)
        for t in tools
    ]
    if _cache is None or _cache[0] != key:
        _cache = (key, ToolIndex.build(tools))
    return _cache[1]


def recent_tools(history: Iterable[tuple[str, dict[str, Any]]], limit: int) -> list[str]:
    """The kernel names of the last ``limit`` distinct tools called in the session."""
    names: list[str] = []
    for kind, payload in reversed(list(history)):
        if kind != "tool_call":
            continue
        name = payload.get("tool")
        if isinstance(name, str) and name not in names:
            names.append(name)
            if len(names) == limit:
                break
    return names


# -- the budget ------------------------------------------------------------------------------


@dataclass
class Budget:
    """One turn's tool selection: what is sent now, and what ``find_tools`` adds to it."""

    tools: Sequence[ToolInfo]
    chosen: list[ToolInfo]
    budgeted: bool
    all_tokens: int
    toolbox: Toolbox = field(init=False)

    def __post_init__(self) -> None:
        if self.budgeted:
            self.toolbox = _toolbox(self.chosen, meta=True)
        else:
            self.toolbox = index_for(self.tools).everything

    @classmethod
    def select(
        cls,
        tools: Sequence[ToolInfo],
        text: str,
        history: Iterable[tuple[str, dict[str, Any]]] = (),
    ) -> Budget:
        """The specs for a turn on ``text``: every one when they fit, else a bounded set."""
        index = index_for(tools)
        all_tokens = index.all_tokens
        if len(tools) <= ALL_TOOLS_MAX and all_tokens <= ALL_TOKENS_MAX:
            return cls(tools, list(tools), False, all_tokens)
        by_name = {t.name: t for t in tools}
        chosen: list[ToolInfo] = []
        spent = 0

        def take(tool: ToolInfo) -> bool:
            nonlocal spent
            cost = _info_tokens(tool)
            if tool in chosen or spent + cost > SELECTED_TOKENS:
                return False
            chosen.append(tool)
            spent += cost
            return True

        for name in recent_tools(history, RECENT_TOOLS):
            if name in by_name:
                take(by_name[name])
        taken = 0
        for tool in index.rank(text)[: RELEVANT_TOOLS * 3]:
            if taken == RELEVANT_TOOLS:
                break
            taken += take(tool)
        return cls(tools, chosen, True, all_tokens)

    @property
    def figures(self) -> dict[str, int]:
        """What a reply event carries: specs sent and in all, and their estimated tokens."""
        return {
            "sent": len(self.toolbox.specs),
            "total": len(self.tools),
            "tokens": sum(spec_tokens(s) for s in self.toolbox.specs),
            "all_tokens": self.all_tokens,
        }

    def find(self, query: str) -> str:
        """Answer a ``find_tools`` call: search the tools not sent yet, add the best
        :data:`FIND_RESULTS` (within :data:`SELECTED_TOKENS`) to the toolbox, and say which
        they are. The query is cut to :data:`INDEX_CHARS` like any text the ranker reads."""
        sent = {t.name for t in self.chosen}
        found: list[ToolInfo] = []
        spent = 0
        for tool in index_for(self.tools).rank(query, exclude=sent)[: FIND_RESULTS * 3]:
            cost = _info_tokens(tool)  # a spec too big for the budget is never added
            if len(found) < FIND_RESULTS and spent + cost <= SELECTED_TOKENS:
                found.append(tool)
                spent += cost
        if not found:
            return (
                f"no other installed tool matches {query[:FIND_LINE_CHARS]!r}; try other "
                "words, or answer without a tool"
            )
        self.chosen.extend(found)
        self.toolbox = _toolbox(self.chosen, meta=True)
        model_names = {kernel: model for model, kernel in self.toolbox.kernel_names.items()}
        lines = ["These tools are now callable:"]
        for tool in found:
            summary = " ".join(tool.description.split())[:FIND_LINE_CHARS]
            lines.append(f"- {model_names[tool.name]}: {summary}")
        return "\n".join(lines)


def _info_tokens(tool: ToolInfo) -> int:
    parameters = tool.parameters or {"type": "object", "properties": {}}
    return spec_tokens(ToolSpec(safe_name(tool.name), tool.description.strip(), parameters))


def _toolbox(tools: Iterable[ToolInfo], *, meta: bool) -> Toolbox:
    """The toolbox of ``tools``: tools.py's, as before, or with ``meta``, ``find_tools``
    first and its name reserved against a plugin tool that would clean up to it."""
    if not meta:
        return build_toolbox(tools)
    box = build_toolbox(tools, reserved=frozenset({FIND_TOOLS}))
    return Toolbox((FIND_SPEC, *box.specs), box.kernel_names)
