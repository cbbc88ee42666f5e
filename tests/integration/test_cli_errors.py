"""The command's everyday edges: every subcommand explains itself in --help, and every
failure is one line starting ``deeting: error:`` with no Python spelling in it (README: exit
codes 0 / 1 / 2)."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from support import DEETING, FIXTURES, REPO

from deeting_tui.cli import build_parser, main


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*path, name))


def test_every_subcommand_has_a_description_in_its_help() -> None:
    missing = [
        " ".join(path)
        for path, parser in _commands(build_parser())
        if path and not (parser.description or "").strip()
    ]
    assert missing == []


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _one_clear_error_line(err: str) -> None:
    assert err.startswith("deeting: error:") and err.count("\n") == 1, err
    for python_spelling in ("Error:", "[Errno", "Traceback", "DEETING_DEBUG"):
        assert python_spelling not in err, err


def test_plugin_new_in_a_folder_it_cannot_write_is_one_clear_line(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Root writes anywhere, so the read-only folder's refusal is what the OS would say."""

    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    code, out, err = _run(capsys, "plugin", "new", "hello", "--dir", str(tmp_path / "ro"))
    assert (code, out) == (1, "")
    _one_clear_error_line(err)
    assert f"cannot create {tmp_path / 'ro' / 'hello'}: Permission denied" in err
    assert "--dir" in err


def test_plugin_new_with_a_file_in_the_way_leaves_nothing_behind(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, _, err = _run(capsys, "plugin", "new", "hello", "--dir", str(blocker))
    assert code == 1
    _one_clear_error_line(err)
    assert blocker.read_text() == "not a folder"


def test_plugin_new_failing_half_way_removes_what_it_wrote(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[Path] = []
    real_write = Path.write_text

    def full_disk(self: Path, *args: object, **kwargs: object) -> int:
        if len(written) == 2:
            raise OSError(28, "No space left on device", str(self))
        written.append(self)
        return real_write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "write_text", full_disk)
    code, _, err = _run(capsys, "plugin", "new", "hello", "--dir", str(tmp_path))
    assert code == 1 and "No space left on device" in err
    _one_clear_error_line(err)
    assert not (tmp_path / "hello").exists()


def test_an_os_error_anywhere_is_a_line_a_person_reads(
    home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import deeting_tui.cli as cli

    def unreadable(args: argparse.Namespace) -> int:
        raise PermissionError(13, "Permission denied", "/somewhere/state.json")

    monkeypatch.setattr(cli, "_dispatch", unreadable)
    code, _, err = _run(capsys, "plugin", "list")
    assert code == 1
    _one_clear_error_line(err)
    assert err == "deeting: error: /somewhere/state.json: Permission denied\n"


def _script(
    home: Path, stdin: bytes, *args: str, locale: str
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "DEETING_HOME": str(home), "LC_ALL": locale}
    env.pop("DEETING_DEBUG", None)
    return subprocess.run(
        [*DEETING, "--script", "-", *args],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=60,
        cwd=REPO,
    )


@pytest.mark.parametrize("locale", ["C.UTF-8", "C"])
def test_a_script_line_that_is_not_utf8_is_refused_alone(home: Path, locale: str) -> None:
    """Piped bytes in another encoding: under a UTF-8 locale the reader died with a
    traceback-like TypeError half way; now that line alone is refused."""
    done = _script(home, b"caf\xe9\nhelp\n", "--json", locale=locale)
    err = done.stderr.decode()
    assert done.returncode == 1
    assert err == (
        "deeting: error: a script line is not UTF-8 text, so it was skipped — save the "
        "script as UTF-8\n"
    )
    events = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [e["type"] for e in events] == ["error", "reply"]  # the next line still answered
    assert len({e["session_id"] for e in events}) == 1


def test_script_file_problems_are_one_line_with_exit_2(home: Path, tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(b"caf\xe9\n")
    for target, words in (
        (tmp_path, f"--script {tmp_path}: cannot read: Is a directory"),
        (latin1, f"--script {latin1}: not UTF-8 text (byte 0xe9 at offset 3)"),
    ):
        env = {**os.environ, "DEETING_HOME": str(home)}
        done = subprocess.run(
            [*DEETING, "--script", str(target)], capture_output=True, text=True, env=env, cwd=REPO
        )
        assert done.returncode == 2
        assert done.stderr == f"deeting: error: {done.stderr.removeprefix('deeting: error: ')}"
        assert words in done.stderr and done.stderr.count("\n") == 1
        assert "[Errno" not in done.stderr and "codec" not in done.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--bogus"], "unrecognized arguments: --bogus — see: deeting --help"),
        (["plugin"], "plugin: the following arguments are required: ACTION"),
        (["plugin", "install"], "plugin install: the following arguments are required: SOURCE"),
        (["plugin", "grant", "x"], "see: deeting plugin grant --help"),
        (["--provider", "gpt"], "invalid choice: 'gpt'"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("deeting: error:") and err.count("\n") == 1, err
    assert words in err


def test_installing_a_folder_that_is_no_plugin_says_so_without_walking_it(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`deeting plugin install ~` by mistake: one line at once, not a walk of the whole home
    (nor a PermissionError from somewhere deep inside it)."""
    wrong = tmp_path / "home-by-mistake"
    (wrong / "deep" / "er").mkdir(parents=True)
    (wrong / "deep" / "link-out").symlink_to("/etc")
    locked = wrong / "private"
    locked.mkdir()
    (locked / "loop").symlink_to(locked / "loop")
    code, _, err = _run(capsys, "plugin", "install", str(wrong))
    assert code == 1
    _one_clear_error_line(err)
    assert f"{wrong} is not a plugin folder (no kimai.json)" in err
    assert "symlink" not in err and "loop" not in err


def test_a_link_loop_inside_a_plugin_is_a_problem_not_a_crash(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugin = tmp_path / "echo-fixture"
    shutil.copytree(FIXTURES / "good_plugin", plugin, ignore=shutil.ignore_patterns("__pycache__"))
    (plugin / "loop").symlink_to(plugin / "loop")
    code, _, err = _run(capsys, "plugin", "install", str(plugin))
    assert code == 1
    _one_clear_error_line(err)
    assert "not a valid plugin: loop:" in err


def test_a_home_where_nothing_can_be_created_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEETING_HOME", "/proc/self/deeting-home")  # /proc makes no folders
    code, _, err = _run(capsys, "plugin", "list")
    assert code == 1
    _one_clear_error_line(err)
    assert "cannot create the folder for the session store" in err
    assert "— check DEETING_HOME" in err
