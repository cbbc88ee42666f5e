"""requirements.txt (deeting_tui/plugin/requirements.py): a complete lock of exact pins, each
refusal one line naming the line and what to do; the closure checked from wheel METADATA."""

from __future__ import annotations

from pathlib import Path

import pytest

from deeting_tui.errors import is_known
from deeting_tui.plugin.requirements import (
    MAX_BYTES,
    MAX_LINES,
    Pin,
    RequirementsError,
    check_closure,
    parse_requirements,
    read_requirements,
)
from deeting_tui.plugin.wheel_fetch import Target

HEX = "a" * 64
LINUX_312 = Target.parse("3.12-manylinux_2_17_x86_64").marker_environment()
LINUX_311 = Target.parse("3.11-manylinux_2_17_x86_64").marker_environment()


def parse(text: str) -> list[Pin]:
    return parse_requirements(text.encode())


def refusal(data: str | bytes) -> str:
    with pytest.raises(RequirementsError) as caught:
        parse_requirements(data if isinstance(data, bytes) else data.encode())
    message = str(caught.value)
    assert "\n" not in message and message.startswith("requirements.txt")
    assert " — " in message and is_known(caught.value) and isinstance(caught.value, ValueError)
    return message


def test_no_file_means_no_pins(tmp_path: Path) -> None:
    assert read_requirements(tmp_path) == []


def test_a_lock_with_comments_markers_extras_and_hashes(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# a lock\n\n"
        "Tabulate==0.9.0   # pretty tables\n"
        'orjson==3.11.4 ; python_version >= "3.11" \\\n'
        f"    --hash=sha256:{HEX} \\\n"
        f"    --hash=sha256:{'B' * 64}\n"
        "requests[SOCKS]==2.32.3\n",
        encoding="utf-8",
    )
    tabulate, orjson, requests = read_requirements(tmp_path)
    assert tabulate == Pin("tabulate", "0.9.0", line=3)
    assert tabulate.requirement == "tabulate==0.9.0"
    assert orjson.marker == 'python_version >= "3.11"' and orjson.line == 4
    assert orjson.hashes == (HEX, "b" * 64)
    assert requests.extras == frozenset({"socks"})
    assert requests.requirement == "requests[socks]==2.32.3"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("tabulate\n", "requirements.txt:1: tabulate is not pinned"),
        ("# x\ntabulate>=0.9\n", "requirements.txt:2: tabulate>=0.9 is not an exact pin"),
        ("tabulate~=0.9.0\n", "is not an exact pin"),
        ("tabulate!=0.9.0\n", "is not an exact pin"),
        ("tabulate===0.9.0\n", "is not an exact pin"),
        ("tabulate==0.*\n", "is not an exact pin"),
        ("tabulate==0.9.0,<1\n", "is not an exact pin"),
        ("tabulate @ https://example.org/t.whl\n", "is a URL or a path"),
        ("tabulate@https://example.org/t.whl\n", "is a URL or a path"),
        ("https://example.org/tabulate-0.9.0-py3-none-any.whl\n", "is a URL or a path"),
        ("./vendor/tabulate\n", "is a URL or a path"),
        ("-e ./src\n", "option -e is not allowed"),
        ("-r other.txt\n", "option -r is not allowed"),
        ("-c constraints.txt\n", "option -c is not allowed"),
        ("-i https://evil.example/simple\n", "option -i is not allowed"),
        ("--index-url https://evil.example/simple\n", "option --index-url is not allowed"),
        ("--extra-index-url=https://e.example\n", "option --extra-index-url="),
        ("--find-links /tmp\n", "option --find-links is not allowed"),
        ("--pre\n", "option --pre is not allowed"),
        ("tabulate==0.9.0 --no-binary tabulate\n", "option --no-binary is not allowed"),
        ("tabulate==0.9.0 --hash=md5:abcd\n", "option --hash=md5:abcd is not allowed"),
        ("tabulate==0.9.0 --hash=sha256:abc\n", "is not allowed"),
        ("tabulate==0.9.0 \\\n  --index-url=x\n", "requirements.txt:1: option --index-url=x"),
        ("tabulate==0.9.0\nTabulate==0.9.0\n", "requirements.txt:2: tabulate is pinned twice"),
        ("tab ulate==1\n", "not a requirement"),
        ("tabulate==0.9.0 ; python_version >> '3'\n", "not a requirement"),
        ("tabulate==0.9.0\x1b[31m\n", "not a requirement"),
    ],
)
def test_every_loose_or_foreign_line_is_refused_on_one_line(text: str, words: str) -> None:
    message = refusal(text)
    assert words in message
    assert "\x1b" not in message


def test_non_utf8_names_the_line() -> None:
    assert refusal(b"tabulate==0.9.0\norjson==3.11.4 \xff\n").startswith(
        "requirements.txt:2: not UTF-8 text"
    )


def test_an_oversize_or_overlong_file_is_refused() -> None:
    assert "KiB limit" in refusal(b"#" * (MAX_BYTES + 1))
    assert f"over {MAX_LINES} lines" in refusal("\n" * (MAX_LINES + 1))


def test_a_symlinked_requirements_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.txt").write_text("tabulate==0.9.0\n")
    (tmp_path / "requirements.txt").symlink_to(tmp_path / "elsewhere.txt")
    with pytest.raises(RequirementsError, match="is not a regular file"):
        read_requirements(tmp_path)


def metadata(name: str, version: str, *requires: str) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    return "\n".join(lines + [f"Requires-Dist: {r}" for r in requires]) + "\n"


def test_a_closed_lock_passes() -> None:
    pins = parse("requests==2.32.3\nidna==3.7\ncharset-normalizer==3.3.2\n")
    check_closure(
        pins,
        {
            pins[0]: metadata(
                "requests",
                "2.32.3",
                "idna<4,>=2.5",
                "Charset_Normalizer<4,>=2",
                'PySocks!=1.5.7,>=1.5.6; extra == "socks"',
                'win-inet-pton; sys_platform == "win32" and extra == "socks"',
            ),
            pins[1]: metadata("idna", "3.7"),
            pins[2]: metadata("charset-normalizer", "3.3.2"),
        },
        LINUX_312,
    )


def test_a_missing_pin_is_named() -> None:
    pins = parse("requests==2.32.3\nidna==3.7\n")
    with pytest.raises(RequirementsError) as caught:
        check_closure(
            pins,
            {
                pins[0]: metadata("requests", "2.32.3", "idna>=2.5", "charset-normalizer<4,>=2"),
                pins[1]: metadata("idna", "3.7"),
            },
            LINUX_312,
        )
    assert str(caught.value) == (
        "requirements.txt:1: requests==2.32.3 needs charset-normalizer<4,>=2, which is not "
        "pinned — add charset-normalizer==VERSION (pin every dependency as NAME==VERSION "
        "(pip-compile writes such a lock))"
    )


def test_a_pinned_version_outside_the_specifier_is_refused() -> None:
    pins = parse("requests==2.32.3\nidna==4.0\n")
    with pytest.raises(RequirementsError, match=r"requirements.txt:2: idna==4.0 does not meet"):
        check_closure(
            pins,
            {pins[0]: metadata("requests", "2.32.3", "idna<4"), pins[1]: metadata("idna", "4.0")},
            LINUX_312,
        )


def test_markers_are_evaluated_for_the_target() -> None:
    pins = parse('app==1.0\ntomli==2.0.1 ; python_version < "3.12"\n')
    meta = {
        pins[0]: metadata("app", "1.0", 'tomli>=1; python_version < "3.12"'),
        pins[1]: metadata("tomli", "2.0.1"),
    }
    check_closure(pins, meta, LINUX_311)
    check_closure(pins, {pins[0]: meta[pins[0]]}, LINUX_312)  # tomli not installed on 3.12
    unpinned = parse("app==1.0\n")
    check_closure(unpinned, {unpinned[0]: meta[pins[0]]}, LINUX_312)
    with pytest.raises(RequirementsError, match="needs tomli"):
        check_closure(unpinned, {unpinned[0]: meta[pins[0]]}, LINUX_311)


def test_extras_asked_for_pull_in_their_dependencies() -> None:
    pins = parse("requests[socks]==2.32.3\n")
    meta = {pins[0]: metadata("requests", "2.32.3", 'PySocks>=1.5.6; extra == "socks"')}
    with pytest.raises(RequirementsError, match="needs PySocks"):
        check_closure(pins, meta, LINUX_312)
    # An extra asked for by a dependency counts too.
    pins = parse("app==1\nrequests==2.32.3\n")
    meta = {
        pins[0]: metadata("app", "1", "requests[socks]==2.32.3"),
        pins[1]: metadata("requests", "2.32.3", 'pysocks; extra == "socks"'),
    }
    with pytest.raises(RequirementsError, match=r"requests==2\.32\.3 needs pysocks"):
        check_closure(pins, meta, LINUX_312)
