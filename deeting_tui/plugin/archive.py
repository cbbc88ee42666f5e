"""Unpack a plugin zip without trusting it.

Zips come from registries and strangers, so everything the archive says is checked before a
byte is written (names, types, declared sizes, compression ratio), and the bytes actually read
are counted again while streaming, because headers can lie. Extraction happens in a staging
folder beside ``dest`` and is renamed into place only when every entry is in, so a refused
archive leaves nothing behind.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from deeting_tui.errors import DeetingError

__all__ = ["ArchiveError", "ArchiveLimits", "check_entries", "extract_zip"]

CHUNK = 64 * 1024
# Below this size a high ratio is ordinary (a small file of spaces); above it, it is a bomb.
RATIO_FLOOR = 64 * 1024
IGNORED_PREFIXES = ("__MACOSX/",)
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int = 2000
    max_total_bytes: int = 100 * 2**20
    max_file_bytes: int = 50 * 2**20
    max_ratio: int = 200


class ArchiveError(DeetingError, ValueError):
    """The archive was refused; the message names the entry and the reason."""


def extract_zip(zip_path: Path, dest: Path, limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """Extract into ``dest`` (created; must not exist) and return the plugin's root folder."""
    dest = Path(dest)
    if dest.exists() or dest.is_symlink():
        raise ArchiveError(f"{dest} already exists; extract into a new folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        top = _extract_all(Path(zip_path), staging, limits)
        os.chmod(staging, 0o755)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dest / top if top else dest


def _extract_all(zip_path: Path, staging: Path, limits: ArchiveLimits) -> str | None:
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ArchiveError(f"{zip_path.name}: not a zip archive ({error})") from None
    with archive:
        entries = _checked_entries(archive, limits)
        written = 0
        for name, info in entries:
            if info.is_dir():
                _make_dir(staging, name)
            else:
                written += _write_file(archive, info, staging / name, written, limits)
        return _single_top(entries)


def check_entries(archive: zipfile.ZipFile, limits: ArchiveLimits) -> None:
    """The checks of :func:`extract_zip` that need only the central directory (names,
    types, sizes, ratios), for a zip another reader unpacks (a wheel: wheel_install.py)."""
    _checked_entries(archive, limits)


def _checked_entries(
    archive: zipfile.ZipFile, limits: ArchiveLimits
) -> list[tuple[str, zipfile.ZipInfo]]:
    """Every check that needs only the central directory, before anything is written."""
    infos = [info for info in archive.infolist() if not info.filename.startswith(IGNORED_PREFIXES)]
    if not infos:
        raise ArchiveError("the archive is empty")
    if len(infos) > limits.max_files:
        raise ArchiveError(f"too many entries: {len(infos)} (at most {limits.max_files})")
    entries: list[tuple[str, zipfile.ZipInfo]] = []
    seen: dict[str, bool] = {}  # normalised name → is a directory
    folded: dict[str, str] = {}  # casefolded name → the name it was first seen as
    total = 0
    for info in infos:
        name = _safe_name(info.filename)
        if not name:
            if info.is_dir():
                continue  # "./": the destination itself
            raise ArchiveError(f"{info.filename!r}: a file with no name")
        _check_kind(info)
        _check_unique(name, info.is_dir(), seen)
        _check_case(name, folded)
        if not info.is_dir():
            _check_size(info, limits)
            total += info.file_size
            if total > limits.max_total_bytes:
                raise ArchiveError(f"too large: over {limits.max_total_bytes} bytes unpacked")
        entries.append((name, info))
    return entries


def _safe_name(raw: str) -> str:
    """A relative POSIX path that stays inside the destination, or an ArchiveError."""
    if "\\" in raw or _DRIVE.match(raw):
        raise ArchiveError(f"{raw!r}: Windows-style path (backslash or drive letter)")
    if "\0" in raw:
        raise ArchiveError(f"{raw!r}: NUL character in name")
    if raw.startswith("/"):
        raise ArchiveError(f"{raw!r}: absolute path")
    parts = [part for part in raw.split("/") if part not in ("", ".")]  # harmless spellings
    if ".." in parts:
        raise ArchiveError(f"{raw!r}: '..' in path would escape the folder")
    return "/".join(parts)


def _check_kind(info: zipfile.ZipInfo) -> None:
    if info.flag_bits & 0x1:
        raise ArchiveError(f"{info.filename!r}: encrypted entries are not supported")
    mode = info.external_attr >> 16
    if not stat.S_IFMT(mode):
        return  # no Unix file type recorded (Windows tools, writestr): a plain file or folder
    if stat.S_ISLNK(mode):
        raise ArchiveError(f"{info.filename!r}: symlinks are not allowed in a plugin archive")
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ArchiveError(f"{info.filename!r}: not a regular file or folder")
    if stat.S_ISDIR(mode) != info.is_dir():
        raise ArchiveError(f"{info.filename!r}: the entry's type and its name disagree")
    if mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX):
        raise ArchiveError(
            f"{info.filename!r}: mode {stat.S_IMODE(mode):o} has a setuid, setgid or sticky "
            "bit; a plugin archive has no use for one"
        )


def _check_unique(name: str, is_dir: bool, seen: dict[str, bool]) -> None:
    """Duplicates would make the result depend on order; a file cannot also be a folder."""
    if name in seen:
        if seen[name] != is_dir:
            raise ArchiveError(f"{name!r}: is both a file and a folder")
        if not is_dir:
            raise ArchiveError(f"{name!r}: duplicate entry")
    parents = [str(p) for p in PurePosixPath(name).parents if str(p) != "."]
    for parent in parents:
        if seen.get(parent) is False:
            raise ArchiveError(f"{name!r}: {parent!r} is both a file and a folder")
        seen[parent] = True
    seen[name] = is_dir


def _check_case(name: str, folded: dict[str, str]) -> None:
    """On a case-insensitive file system (macOS, Windows) two such names are one file, and
    which content wins depends on order: refuse the pair everywhere, so a plugin unpacks the
    same on every machine."""
    parents = [str(p) for p in PurePosixPath(name).parents if str(p) != "."]
    for path in (name, *parents):
        first = folded.setdefault(path.casefold(), path)
        if first != path:
            raise ArchiveError(f"{name!r}: {path!r} differs from {first!r} only in letter case")


def _check_size(info: zipfile.ZipInfo, limits: ArchiveLimits) -> None:
    if info.file_size > limits.max_file_bytes:
        raise ArchiveError(
            f"{info.filename!r}: {info.file_size} bytes unpacked (at most {limits.max_file_bytes})"
        )
    if info.file_size > RATIO_FLOOR and info.file_size > limits.max_ratio * max(
        info.compress_size, 1
    ):
        raise ArchiveError(
            f"{info.filename!r}: compression ratio over {limits.max_ratio}:1 (a zip bomb?)"
        )


def _make_dir(staging: Path, name: str) -> None:
    path = staging / name
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o755)


def _write_file(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, written: int, limits: ArchiveLimits
) -> int:
    """Stream one entry to disk, counting real bytes against the limits; returns the count."""
    _make_parents(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    size = 0
    with os.fdopen(os.open(path, flags, 0o644), "wb") as out:
        os.fchmod(out.fileno(), 0o644)
        for chunk in _read_chunks(archive, info):
            size += len(chunk)
            _check_streamed(info, size, written + size, limits)
            out.write(chunk)
    return size


def _make_parents(path: Path) -> None:
    """Folders a zip only implies still get 0755, whatever the umask says."""
    missing: list[Path] = []
    folder = path.parent
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        folder.mkdir()
        os.chmod(folder, 0o755)


def _read_chunks(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(CHUNK):
                yield chunk
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as error:
        raise ArchiveError(f"{info.filename!r}: corrupt archive ({error})") from None
    except NotImplementedError as error:
        raise ArchiveError(f"{info.filename!r}: unsupported compression ({error})") from None
    except RuntimeError as error:  # zipfile's way of saying "password required"
        raise ArchiveError(f"{info.filename!r}: cannot be read ({error})") from None


def _check_streamed(info: zipfile.ZipInfo, size: int, total: int, limits: ArchiveLimits) -> None:
    """Headers can lie about sizes; the bytes cannot."""
    if size > info.file_size:
        raise ArchiveError(f"{info.filename!r}: more data than its header declares")
    if size > limits.max_file_bytes:
        raise ArchiveError(f"{info.filename!r}: over {limits.max_file_bytes} bytes unpacked")
    if total > limits.max_total_bytes:
        raise ArchiveError(f"too large: over {limits.max_total_bytes} bytes unpacked")
    if size > RATIO_FLOOR and size > limits.max_ratio * max(info.compress_size, 1):
        raise ArchiveError(
            f"{info.filename!r}: compression ratio over {limits.max_ratio}:1 (a zip bomb?)"
        )


def _single_top(entries: list[tuple[str, zipfile.ZipInfo]]) -> str | None:
    """The one folder every entry lives under (a zip made of a folder), or None."""
    tops = {name.split("/", 1)[0] for name, _ in entries}
    if len(tops) != 1:
        return None
    top = tops.pop()
    inside = all("/" in name or info.is_dir() for name, info in entries)
    return top if inside else None
