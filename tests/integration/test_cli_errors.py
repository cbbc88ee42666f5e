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


def _calc_home(home: Path) -> dict[str, str]:
    env = {**os.environ, "DEETING_HOME": str(home)}
    env.pop("DEETING_DEBUG", None)
    installed = subprocess.run(
        [*DEETING, "plugin", "install", str(REPO / "plugins" / "calc")],
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    assert installed.returncode == 0, installed.stderr
    return env


def test_a_script_whose_reader_goes_away_ends_quietly(home: Path) -> None:
    """`deeting --script - | head -1`: exit 141 as a shell expects, not a traceback per line."""
    env = _calc_home(home)
    # More output than a pipe holds (~350 bytes a help, 64 KiB a pipe): the writer must meet
    # the closed end, however the two processes are scheduled.
    script = b"help\n" * 1000
    process = subprocess.Popen(
        [*DEETING, "--script", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        cwd=REPO,
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(script)
    process.stdin.close()
    assert process.stdout.readline().startswith(b"I'm the offline assistant")
    process.stdout.close()  # the reader is gone
    assert process.stderr is not None
    err = process.stderr.read()
    assert process.wait(timeout=60) == 141
    assert err == b""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("json_mode", [False, True])
def test_a_script_whose_output_cannot_be_written_says_so(home: Path, json_mode: bool) -> None:
    env = _calc_home(home)
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [*DEETING, "--script", "-", *(["--json"] if json_mode else [])],
            input=b"calc 1+1\ncalc 2+2\n",
            stdout=full,
            stderr=subprocess.PIPE,
            env=env,
            cwd=REPO,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.decode() == (
        "deeting: error: cannot write the output: No space left on device\n"
    )
