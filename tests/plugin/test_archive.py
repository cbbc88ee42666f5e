from __future__ import annotations

import stat
import struct
import warnings
import zipfile
from pathlib import Path

import pytest

from deeting_tui.plugin.archive import ArchiveError, ArchiveLimits, extract_zip
from deeting_tui.plugin.checker import check_plugin

GOOD = Path(__file__).resolve().parent.parent / "fixtures" / "good_plugin"
Entries = list[tuple[str | zipfile.ZipInfo, bytes]]


def make_zip(path: Path, entries: Entries, method: int = zipfile.ZIP_DEFLATED) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicates we mean to write
        with zipfile.ZipFile(path, "w", method) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return path


def entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def refuse(tmp_path: Path, zip_path: Path, match: str, **limits: int) -> None:
    dest = tmp_path / "out"
    with pytest.raises(ArchiveError, match=match):
        extract_zip(zip_path, dest, ArchiveLimits(**limits))
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if p.name.startswith(".out")] == []


def test_zip_of_a_folder_returns_that_folder(tmp_path: Path) -> None:
    files = [p for p in sorted(GOOD.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]
    entries: Entries = [(f"echo/{p.relative_to(GOOD).as_posix()}", p.read_bytes()) for p in files]
    root = extract_zip(make_zip(tmp_path / "p.zip", entries), tmp_path / "out")
    assert root == tmp_path / "out" / "echo"
    assert check_plugin(root)[1] == []
    assert stat.S_IMODE((root / "kimai.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((root / "src").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755


def test_flat_zip_returns_dest(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "p.zip", [("kimai.json", b"{}"), ("src/index.py", b"")])
    assert extract_zip(zip_path, tmp_path / "out") == tmp_path / "out"
    assert (tmp_path / "out" / "src" / "index.py").exists()


def test_single_top_level_file_is_not_a_root_folder(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "p.zip", [("README.md", b"hi")])
    assert extract_zip(zip_path, tmp_path / "out") == tmp_path / "out"


def test_explicit_folder_entries_and_macos_junk(tmp_path: Path) -> None:
    zip_path = make_zip(
        tmp_path / "p.zip",
        [
            (entry("p/", stat.S_IFDIR | 0o777), b""),
            (entry("p/a.txt", stat.S_IFREG | 0o777), b"a"),
            ("__MACOSX/p/._a.txt", b"junk"),
        ],
    )
    root = extract_zip(zip_path, tmp_path / "out")
    assert root == tmp_path / "out" / "p"
    assert stat.S_IMODE((root / "a.txt").stat().st_mode) == 0o644  # never executable
    assert not (tmp_path / "out" / "__MACOSX").exists()


def test_dest_must_not_exist(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "p.zip", [("a", b"")])
    (tmp_path / "out").mkdir()
    with pytest.raises(ArchiveError, match="already exists"):
        extract_zip(zip_path, tmp_path / "out")


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "p.zip").write_bytes(b"not a zip at all")
    refuse(tmp_path, tmp_path / "p.zip", "not a zip archive")
    refuse(tmp_path, tmp_path / "missing.zip", "not a zip archive")


def test_empty_archive(tmp_path: Path) -> None:
    refuse(tmp_path, make_zip(tmp_path / "p.zip", []), "empty")


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("/etc/passwd", "absolute path"),
        ("../evil.py", r"'\.\.' in path"),
        ("a/../../evil.py", r"'\.\.' in path"),
        ("a\\evil.py", "Windows-style"),
        ("C:/evil.py", "Windows-style"),
        (".", "a file with no name"),
    ],
)
def test_bad_names(tmp_path: Path, name: str, match: str) -> None:
    refuse(tmp_path, make_zip(tmp_path / "p.zip", [("ok.txt", b""), (name, b"x")]), match)


@pytest.mark.parametrize(
    ("mode", "match"),
    [
        (stat.S_IFLNK | 0o777, "symlinks are not allowed"),
        (stat.S_IFIFO | 0o644, "not a regular file or folder"),
        (stat.S_IFCHR | 0o644, "not a regular file or folder"),
        (stat.S_IFDIR | 0o755, "type and its name disagree"),
    ],
)
def test_non_regular_entries(tmp_path: Path, mode: int, match: str) -> None:
    zip_path = make_zip(tmp_path / "p.zip", [("ok.txt", b""), (entry("link", mode), b"/etc")])
    refuse(tmp_path, zip_path, match)


def test_encrypted_entries(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "p.zip", [("a.txt", b"secret")], zipfile.ZIP_STORED)
    data = bytearray(zip_path.read_bytes())
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.index(signature) + flags_at
        data[at : at + 2] = struct.pack("<H", struct.unpack("<H", data[at : at + 2])[0] | 1)
    zip_path.write_bytes(bytes(data))
    refuse(tmp_path, zip_path, "encrypted")


def test_duplicates_and_file_folder_clashes(tmp_path: Path) -> None:
    refuse(tmp_path, make_zip(tmp_path / "a.zip", [("a", b"1"), ("a", b"2")]), "duplicate")
    refuse(
        tmp_path, make_zip(tmp_path / "b.zip", [("a", b"1"), ("a/b", b"2")]), "file and a folder"
    )
    refuse(
        tmp_path, make_zip(tmp_path / "c.zip", [("a/b", b"1"), ("a", b"2")]), "file and a folder"
    )
    refuse(tmp_path, make_zip(tmp_path / "d.zip", [("a/b", b"1"), ("a/./b", b"2")]), "duplicate")


def test_names_that_differ_only_in_case(tmp_path: Path) -> None:
    refuse(
        tmp_path, make_zip(tmp_path / "a.zip", [("README.md", b"1"), ("readme.MD", b"2")]), "case"
    )
    refuse(tmp_path, make_zip(tmp_path / "b.zip", [("p/a", b"1"), ("P/b", b"2")]), "'P' differs")
    root = extract_zip(
        make_zip(tmp_path / "c.zip", [("p/a", b"1"), ("p/A2", b"2")]), tmp_path / "x"
    )
    assert sorted(f.name for f in root.iterdir()) == ["A2", "a"]


@pytest.mark.parametrize("bits", [stat.S_ISUID, stat.S_ISGID, stat.S_ISVTX])
def test_setuid_setgid_and_sticky_modes(tmp_path: Path, bits: int) -> None:
    zip_path = make_zip(tmp_path / "p.zip", [(entry("run.py", stat.S_IFREG | bits | 0o777), b"")])
    refuse(tmp_path, zip_path, "setuid, setgid or sticky")


def test_harmless_spellings_are_normalised(tmp_path: Path) -> None:
    entries: Entries = [(entry("./", stat.S_IFDIR | 0o755), b""), ("./p/a", b"1"), ("p//b", b"2")]
    root = extract_zip(make_zip(tmp_path / "p.zip", entries), tmp_path / "out")
    assert root == tmp_path / "out" / "p"
    assert sorted(p.name for p in root.iterdir()) == ["a", "b"]


def test_too_many_files(tmp_path: Path) -> None:
    entries: Entries = [(f"f{i}", b"") for i in range(4)]
    refuse(tmp_path, make_zip(tmp_path / "p.zip", entries), "too many entries: 4", max_files=3)


def test_sizes(tmp_path: Path) -> None:
    big = make_zip(tmp_path / "a.zip", [("a", b"x" * 100)], zipfile.ZIP_STORED)
    refuse(tmp_path, big, "100 bytes unpacked", max_file_bytes=99)
    two = make_zip(tmp_path / "b.zip", [("a", b"x" * 60), ("b", b"y" * 60)], zipfile.ZIP_STORED)
    refuse(tmp_path, two, "too large: over 100 bytes", max_total_bytes=100)


def test_compression_bomb(tmp_path: Path) -> None:
    bomb = make_zip(tmp_path / "p.zip", [("zeros", bytes(4 * 2**20))])
    refuse(tmp_path, bomb, "compression ratio over 200:1")


def test_small_compressible_files_are_fine(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "p.zip", [("spaces.txt", b" " * 20_000)])
    extract_zip(zip_path, tmp_path / "out")


def test_header_that_lies_about_size(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "p.zip", [("a.txt", b"x" * 1000)], zipfile.ZIP_STORED)
    data = bytearray(zip_path.read_bytes())
    at = data.index(b"PK\x01\x02") + 24  # central directory: uncompressed size
    data[at : at + 4] = struct.pack("<I", 10)
    zip_path.write_bytes(bytes(data))
    refuse(tmp_path, zip_path, "a.txt")


def test_corrupt_data(tmp_path: Path) -> None:
    zip_path = make_zip(tmp_path / "p.zip", [("a.txt", b"hello world " * 100)])
    data = bytearray(zip_path.read_bytes())
    start = data.index(b"a.txt") + len("a.txt")
    data[start + 5 : start + 25] = bytes(20)
    zip_path.write_bytes(bytes(data))
    refuse(tmp_path, zip_path, "corrupt archive")


def test_nothing_is_left_when_a_late_entry_fails(tmp_path: Path) -> None:
    entries: Entries = [("a.txt", b"fine"), ("b/c.txt", b"fine"), ("z.bin", b"x" * 500)]
    refuse(tmp_path, make_zip(tmp_path / "p.zip", entries), "z.bin", max_file_bytes=100)
