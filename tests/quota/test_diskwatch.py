"""The live disk accounting (quota/diskwatch.py, diskaccount.py, disktree.py, openfiles.py)
against a real folder.

Events a test causes are queued by the time its syscall returns, so ``watch.drain()`` hands
them over deterministically; walks run in a thread and are awaited with ``walked()``. After
each step the running total must equal what a walk of the folders finds.
"""

from __future__ import annotations

import asyncio
import mmap
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from deeting_tui.quota import disktree, diskwatch, usage
from deeting_tui.quota.diskaccount import Account
from deeting_tui.quota.diskwatch import DiskWatch
from deeting_tui.quota.inotify import IN_Q_OVERFLOW, Event, InotifyError

MIB = 1024 * 1024


@dataclass
class Owner:
    """What a Box is told, recorded."""

    over: list[int] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    told: asyncio.Event = field(default_factory=asyncio.Event)
    pids: list[int] = field(default_factory=lambda: [os.getpid()])  # the test writes

    def disk_over(self, used: int) -> None:
        self.over.append(used)
        self.told.set()

    def disk_fallback(self, reason: str) -> None:
        self.fallbacks.append(reason)
        self.told.set()

    def disk_pids(self) -> list[int]:
        return self.pids


class Folders:
    def __init__(self, tmp_path: Path, quota_mb: int) -> None:
        self.data, self.cache, self.tmp = tmp_path / "data", tmp_path / "cache", tmp_path / "tmp"
        self.outside = tmp_path / "outside"
        for folder in (self.data, self.cache, self.tmp, self.outside):
            folder.mkdir()
        self.watch = DiskWatch()
        self.owner = Owner()
        self.quota = quota_mb * MIB
        self._account: Account | None = None

    @property
    def roots(self) -> list[Path]:
        return [self.data, self.cache, self.tmp]

    @property
    def account(self) -> Account:
        assert self._account is not None
        return self._account

    async def start(self) -> Account:
        self._account = self.watch.watch(self.roots, self.quota, self.owner)
        assert self._account is not None, self.watch.problem
        await self.account.walked()
        return self.account

    async def settle(self) -> int:
        """Hand over the queued events (and any walk they caused); the running total, which
        must be what a walk of the folders finds."""
        self.watch.drain()
        await self.account.walked()
        self.watch.drain()
        assert self.account.total == usage.folder_usage(self.roots)
        return self.account.total


def write(path: Path, mib: float) -> None:
    path.write_bytes(b"x" * int(mib * MIB))


@pytest.fixture
async def folders(tmp_path: Path) -> AsyncIterator[Folders]:
    made = Folders(tmp_path, quota_mb=64)
    yield made
    made.watch.close()


async def test_files_are_counted_as_they_grow_shrink_and_go(folders: Folders) -> None:
    write(folders.data / "before.bin", 1)
    await folders.start()
    assert await folders.settle() == MIB
    write(folders.data / "a.bin", 2)
    write(folders.cache / "b.bin", 1)
    assert await folders.settle() == 4 * MIB
    with open(folders.data / "a.bin", "ab") as f:
        f.write(b"x" * MIB)
    assert await folders.settle() == 5 * MIB
    os.truncate(folders.data / "a.bin", 0)  # truncate, then write again
    assert await folders.settle() == 2 * MIB
    with open(folders.data / "a.bin", "r+b") as f:
        f.write(b"y" * MIB)
    assert await folders.settle() == 3 * MIB
    os.unlink(folders.cache / "b.bin")
    (folders.data / "before.bin").unlink()
    assert await folders.settle() == MIB
    assert folders.owner.over == [] and folders.owner.fallbacks == []


async def test_renames_in_out_and_within(folders: Folders) -> None:
    await folders.start()
    write(folders.outside / "in.bin", 1)
    os.rename(folders.outside / "in.bin", folders.data / "in.bin")  # a file moves in
    assert await folders.settle() == MIB
    bundle = folders.outside / "bundle"
    (bundle / "deep").mkdir(parents=True)
    write(bundle / "deep" / "1.bin", 1)
    write(bundle / "2.bin", 1)
    os.rename(bundle, folders.data / "bundle")  # a folder with files moves in
    total = await folders.settle()
    assert 3 * MIB < total < 4 * MIB  # the files and the two folders' own blocks
    os.rename(folders.data / "bundle", folders.cache / "moved")  # within: nothing changes
    assert await folders.settle() == total
    write(folders.cache / "moved" / "deep" / "3.bin", 1)  # the moved folder is still watched
    assert await folders.settle() == total + MIB
    os.rename(folders.cache / "moved", folders.outside / "gone")  # a folder moves out
    assert await folders.settle() == MIB
    write(folders.outside / "gone" / "4.bin", 1)  # ... and is watched no more
    assert await folders.settle() == MIB
    os.rename(folders.data / "in.bin", folders.outside / "out.bin")  # a file moves out
    assert await folders.settle() == 0
    assert len(folders.account.dirs) == 3  # the roots, nothing from outside


async def test_folders_that_appear_are_watched_at_once(folders: Folders) -> None:
    await folders.start()
    deep = folders.data / "a" / "b" / "c"
    deep.mkdir(parents=True)  # events for a and nothing yet below: found by listing
    write(deep / "1.bin", 1)
    total = await folders.settle()
    assert MIB < total < 2 * MIB
    write(deep / "2.bin", 1)
    assert await folders.settle() == total + MIB
    shutil.rmtree(folders.data / "a")  # deleted and made again
    assert await folders.settle() == 0
    deep.mkdir(parents=True)
    write(deep / "3.bin", 1)
    assert await folders.settle() == total


async def test_a_root_deleted_and_made_again_is_watched_after_a_walk(folders: Folders) -> None:
    await folders.start()
    write(folders.tmp / "1.bin", 1)
    assert await folders.settle() == MIB
    shutil.rmtree(folders.tmp)
    assert await folders.settle() == 0
    folders.tmp.mkdir()
    write(folders.tmp / "2.bin", 2)
    folders.account.rescan()  # what the watchdog's check does now and then
    assert await folders.settle() == 2 * MIB
    write(folders.tmp / "3.bin", 1)
    assert await folders.settle() == 3 * MIB


async def test_hard_links_count_once_and_links_are_not_followed(folders: Folders) -> None:
    await folders.start()
    write(folders.data / "a.bin", 1)
    os.link(folders.data / "a.bin", folders.cache / "a-again.bin")
    assert await folders.settle() == MIB
    (folders.data / "a.bin").unlink()  # one name left: still there
    assert await folders.settle() == MIB
    empty = folders.data / "empty"
    empty.touch()
    os.link(empty, folders.data / "other-name")
    with open(folders.data / "other-name", "wb") as f:
        f.write(b"x" * MIB)
    (folders.data / "other-name").unlink()  # the blocks stay, under "empty"
    assert await folders.settle() == 2 * MIB
    write(folders.outside / "big.bin", 4)
    (folders.data / "to-outside").symlink_to(folders.outside)
    (folders.data / "to-big").symlink_to(folders.outside / "big.bin")
    with_links = await folders.settle()
    assert 2 * MIB <= with_links < 2 * MIB + 64 * 1024  # a link's own blocks, not its target's
    write(folders.outside / "more.bin", 1)
    assert await folders.settle() == with_links
    assert len(folders.account.dirs) == 3


async def test_crossing_the_quota_is_told_once(tmp_path: Path) -> None:
    folders = Folders(tmp_path, quota_mb=8)
    try:
        await folders.start()
        for index in range(8):
            write(folders.data / f"{index}.bin", 1)
        await folders.settle()
        assert folders.owner.over == []  # at the quota is allowed
        write(folders.cache / "one-more.bin", 0.01)
        await folders.settle()
        write(folders.cache / "and-more.bin", 1)
        await folders.settle()
        assert len(folders.owner.over) == 1 and folders.owner.over[0] > 8 * MIB
    finally:
        folders.watch.close()


async def test_a_sparse_file_filled_through_a_mapping_is_seen(tmp_path: Path) -> None:
    """A shared mapping fills holes with no event until it is dropped; while holes could
    take the plugin past its quota, they are looked at every few milliseconds."""
    folders = Folders(tmp_path, quota_mb=4)
    try:
        await folders.start()
        fd = os.open(folders.data / "sparse.bin", os.O_CREAT | os.O_RDWR, 0o600)
        os.ftruncate(fd, 8 * MIB)  # 8 MiB of holes, nothing on disk
        area = mmap.mmap(fd, 8 * MIB)
        os.close(fd)
        assert await folders.settle() == 0
        area[: 6 * MIB] = b"x" * (6 * MIB)  # no event: the mapping is still there
        await asyncio.wait_for(folders.owner.told.wait(), 30)
        assert len(folders.owner.over) == 1 and folders.owner.over[0] >= 6 * MIB
        area.close()
    finally:
        folders.watch.close()


async def test_files_written_with_no_name_here_are_counted(tmp_path: Path) -> None:
    """A file unlinked while open, or made without a name (O_TMPFILE), holds its blocks
    until it is closed; no walk finds it, the files its processes hold open show it."""
    folders = Folders(tmp_path, quota_mb=8)
    try:
        await folders.start()
        fd = os.open(folders.data / "soon-gone.bin", os.O_CREAT | os.O_WRONLY, 0o600)
        os.unlink(folders.data / "soon-gone.bin")
        os.write(fd, b"x" * (3 * MIB))
        nameless = os.open(folders.cache, os.O_TMPFILE | os.O_WRONLY, 0o600)
        os.write(nameless, b"x" * (3 * MIB))
        folders.watch.drain()
        assert folders.account.poll_open() and folders.account.total == 6 * MIB
        assert usage.folder_usage(folders.roots) == 0  # no walk would see them
        os.close(nameless)  # freed
        assert not folders.account.poll_open() and folders.account.total == 3 * MIB
        os.write(fd, b"x" * (6 * MIB))  # 9 MiB: over
        await asyncio.wait_for(folders.owner.told.wait(), 30)
        assert len(folders.owner.over) == 1 and folders.owner.over[0] == 9 * MIB
        os.close(fd)
    finally:
        folders.watch.close()


async def test_a_write_in_flight_is_seen_before_it_returns(tmp_path: Path) -> None:
    """No event tells of a write until it has returned: a large one in flight shows in the
    file's blocks through the writer's descriptor, looked at while it works."""
    folders = Folders(tmp_path, quota_mb=16)
    try:
        await folders.start()
        fd = os.open(folders.data / "big.bin", os.O_CREAT | os.O_WRONLY, 0o600)
        folders.watch.drain()  # it opened a file: its open files are looked at from now on
        assert folders.account in folders.watch.writing
        loop = asyncio.get_running_loop()
        written = loop.run_in_executor(None, os.write, fd, b"x" * (512 * MIB))
        await asyncio.wait_for(folders.owner.told.wait(), 30)
        assert len(folders.owner.over) == 1
        assert folders.owner.over[0] < 512 * MIB  # seen during the write
        await written
        os.close(fd)
    finally:
        folders.watch.close()


async def test_too_many_folders_fall_back_to_walking(
    folders: Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disktree, "MAX_DIRS", 8)
    await folders.start()
    for index in range(4):
        (folders.data / f"{index}").mkdir()
    await folders.settle()
    assert folders.owner.fallbacks == [] and len(folders.watch.owners) == 7
    for index in range(4, 8):
        (folders.data / f"{index}").mkdir()
    folders.watch.drain()
    assert folders.owner.fallbacks == ["more than 8 folders"]
    assert not folders.account.live and folders.watch.owners == {}  # watches given back
    assert diskwatch.walked_instead(folders.roots) == "more than 8 folders"
    assert diskwatch.walked_instead(folders.roots, folders.watch) == "more than 8 folders"


async def test_too_many_files_fall_back_to_walking(
    folders: Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disktree, "MAX_FILES", 4)
    for index in range(100):
        (folders.data / f"empty-{index}").touch()  # files that hold nothing are not kept
    await folders.start()
    for index in range(4):
        write(folders.data / f"{index}.bin", 0.01)
    assert await folders.settle() > 0 and folders.owner.fallbacks == []
    write(folders.data / "4.bin", 0.01)
    folders.watch.drain()
    assert folders.owner.fallbacks == ["more than 4 files"]


async def test_a_queue_overflow_walks_the_folders_again(folders: Folders) -> None:
    await folders.start()
    write(folders.data / "seen.bin", 1)
    assert await folders.settle() == MIB
    write(folders.data / "lost.bin", 2)
    assert folders.watch.inotify is not None
    folders.watch.inotify.read()  # these events are lost, as when the queue overflows
    folders.watch.dispatch([Event(-1, IN_Q_OVERFLOW, 0, "")])
    assert folders.account.scanning
    assert await folders.settle() == 3 * MIB


async def test_events_during_a_walk_are_not_lost(folders: Folders) -> None:
    for index in range(50):
        (folders.data / f"{index}").mkdir()
        write(folders.data / f"{index}" / "a.bin", 0.01)
    account = folders.watch.watch(folders.roots, folders.quota, folders.owner)
    assert account is not None and account.scanning
    folders._account = account
    for index in range(50):  # while the first walk runs, in a thread
        write(folders.data / f"{index}" / "b.bin", 0.02)
        folders.watch.drain()
    await folders.settle()


async def test_without_inotify_nothing_is_watched(
    folders: Folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable() -> None:
        raise InotifyError(24, "the user's inotify instances are used up")

    monkeypatch.setattr(diskwatch, "Inotify", unavailable)
    assert folders.watch.watch(folders.roots, folders.quota, folders.owner) is None
    assert folders.watch.problem == "the user's inotify instances are used up"
    reason = diskwatch.walked_instead(folders.roots, folders.watch)
    assert reason == "no inotify here: the user's inotify instances are used up"


def test_outside_an_event_loop_nothing_is_watched_and_nothing_is_wrong(tmp_path: Path) -> None:
    watch = DiskWatch()
    assert watch.watch([tmp_path], MIB, Owner()) is None
    assert watch.problem is None  # the next worker, on the loop, is watched
    watch.close()
