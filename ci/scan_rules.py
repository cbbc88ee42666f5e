"""The scan's rules as data, and a finding of one: what ``ci/scan.py`` checks, in one table.

Each rule has an id, a severity, a message and the fix an author should make; ``--rules``
prints this table as it is. Beside it are the names each rule watches for (fnmatch
patterns over qualified names, ``socket`` also covering ``socket.socket``), so adding a
network library or a write call is a one-line change here, not in the analyzer.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

__all__ = ["ERROR", "NAME_RULES", "RULES", "WARNING", "Finding", "Rule"]

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: str
    message: str
    fix: str


def _rules(table: str) -> dict[str, Rule]:
    """The table below as Rule objects: ``ID SEVERITY NAME | message | fix`` per line."""
    rules = {}
    for line in filter(None, (line.strip() for line in table.splitlines())):
        head, message, fix = (part.strip() for part in line.split(" | "))
        rule_id, severity, name = head.split()
        rules[rule_id] = Rule(rule_id, name, severity, message, fix)
    return rules


RULES: dict[str, Rule] = _rules("""
DS001 error unparsable | a Python file cannot be parsed, so it cannot be checked \
| fix the syntax error (the worker could not import this file either)
DS002 error bad-suppression | an ignore comment without a reason, or naming an unknown rule \
| write: # deeting-scan: ignore[RULE] why this is safe
DS003 warning unused-suppression | an ignore comment that silences nothing on its line \
| remove the comment, or move it to the line of the finding
DS004 error manifest-unreadable | kimai.json's permissions cannot be read, so the code is \
judged as declaring none | fix kimai.json (python ci/lint.py PATH says how)
DS101 error network-without-scope | network code (sockets, HTTP clients) in a plugin that \
declares no network scope | declare "network:HOST" (each host it talks to) in kimai.json's \
permissions, or remove the network code
DS201 error shell-without-scope | runs programs (subprocess, os.system, os.popen, os.exec*, \
os.spawn*, pty) in a plugin that does not declare 'shell' | declare "shell" in kimai.json's \
permissions, or do the work in Python
DS301 error native-code | ctypes or cffi: native calls step around the sandbox's guard rails, \
whatever the permissions | use a Python library, or a program run through the 'shell' scope
DS401 error dynamic-code | eval, exec or compile of a string that is not a literal: the code \
that runs cannot be reviewed | parse data with json or ast; dispatch on names with a dict of \
functions
DS402 error dynamic-import | __import__ or importlib.import_module of a computed name: what \
is imported cannot be reviewed | import modules by name (import x), or map the allowed names \
to modules in a dict
DS501 error write-outside-plugin | writes to a fixed path outside the plugin's own folders \
and its filesystem:write scopes | write under ctx.data_dir or ctx.cache_dir, or declare \
"filesystem:write:PATH" in kimai.json
DS601 warning unsafe-deserialisation | pickle, marshal or shelve loads run code chosen by \
whoever wrote the data | store data as JSON (json.loads) and check its shape
DS701 error dependency-lock | requirements.txt is not a complete lock of pins with a wheel for \
every target (a loose pin, an option, an unpinned dependency, no wheel: sdists are never \
used) | pin every dependency as NAME==VERSION (pip-compile writes such a lock) and pick \
versions that publish wheels for the targets
DS702 error vulnerable-dependency | a pinned dependency's version has a known advisory in the \
offline advisory database (--advisories) | pin a fixed version (the advisory names it), \
or drop the dependency
""")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Qualified-name patterns (fnmatch; a pattern also covers everything under it: "socket"
# covers "socket.socket"). A rule is skipped when the plugin declares the scope named.
NAME_RULES: tuple[tuple[str, str | None, frozenset[str]], ...] = (
    (
        "DS101",
        "network",
        _words("""
        socket _socket socketserver http.client http.server urllib.request urllib3 requests
        httpx aiohttp websocket websockets ftplib smtplib poplib imaplib nntplib telnetlib
        xmlrpc.client xmlrpc.server pycurl grpc paramiko asyncio.open_connection
        asyncio.start_server asyncio.open_unix_connection asyncio.start_unix_server"""),
    ),
    (
        "DS201",
        "shell",
        _words("""
        subprocess _posixsubprocess pty pexpect plumbum sh os.system os.popen os.exec*
        os.spawn* os.posix_spawn* os.forkpty asyncio.create_subprocess_*"""),
    ),
    ("DS301", None, _words("ctypes _ctypes cffi")),
    (
        "DS601",
        None,
        _words("""
        pickle.load pickle.loads pickle.Unpickler _pickle.load* _pickle.Unpickler cPickle
        dill.load* cloudpickle.load* joblib.load marshal.load marshal.loads shelve.open
        yaml.unsafe_load"""),
    ),
)
DYNAMIC_CODE = _words("builtins.eval builtins.exec builtins.compile")
DYNAMIC_IMPORT = _words("builtins.__import__ importlib.import_module importlib.__import__")
PATH_TYPES = _words("pathlib.Path pathlib.PurePath pathlib.PosixPath pathlib.PurePosixPath")
OPENERS = _words("builtins.open io.open codecs.open os.open")
# Calls that change the file system, by which of their arguments is the path changed.
WRITES_FIRST = _words("""
    os.remove os.unlink os.rmdir os.removedirs os.mkdir os.makedirs os.truncate os.chmod
    os.lchmod os.chown os.lchown os.mkfifo os.mknod os.utime shutil.rmtree shutil.chown""")
WRITES_BOTH = _words("os.rename os.renames os.replace shutil.move")
WRITES_SECOND = _words("""
    shutil.copy shutil.copy2 shutil.copyfile shutil.copytree shutil.copymode shutil.copystat
    os.symlink os.link""")
TEMP_FILES = _words("""
    tempfile.mkstemp tempfile.mkdtemp tempfile.NamedTemporaryFile tempfile.TemporaryFile
    tempfile.TemporaryDirectory tempfile.SpooledTemporaryFile""")
PATH_WRITE_METHODS = _words("""
    write_text write_bytes touch mkdir unlink rmdir rename replace symlink_to hardlink_to
    chmod lchmod""")
WRITE_FLAGS = _words("O_WRONLY O_RDWR O_CREAT O_APPEND O_TRUNC O_EXCL")
BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: str
    file: str
    line: int
    column: int
    message: str
    fix: str
    reason: str | None = None  # set when an ignore comment silenced it

    @classmethod
    def of(cls, rule: str, file: str, line: int, column: int, message: str) -> Finding:
        return cls(rule, RULES[rule].severity, file, line, column, message, RULES[rule].fix)

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}" if self.line else self.file
        said = f"{self.severity} {self.rule} {RULES[self.rule].name}: {self.message}"
        return f"{where + ': ' if where else ''}{said} — fix: {self.fix}"
