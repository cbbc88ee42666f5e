"""bench-filler: writes into its data folder as fast as Python can, so
``python -m bench.diskquota`` can measure how far past its quota a plugin gets: ``mb`` files
of 1 MiB one after another, or (``threads`` > 1) one file per thread, each in one write()."""

from __future__ import annotations

import os
import threading
from typing import Any

MIB = 1024 * 1024


def invoke(ctx: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    folder = ctx.data_dir / "fill"
    folder.mkdir(exist_ok=True)
    mb, threads = int(args["mb"]), int(args.get("threads", 1))
    if threads <= 1:
        chunk = b"x" * MIB
        for index in range(mb):
            with open(folder / f"{index:05d}.bin", "wb") as f:
                f.write(chunk)
    else:
        chunk = b"x" * (mb // threads * MIB)

        def one(index: int) -> None:
            fd = os.open(folder / f"{index:05d}.bin", os.O_CREAT | os.O_WRONLY, 0o600)
            try:
                os.write(fd, chunk)
            finally:
                os.close(fd)

        started = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
        for thread in started:
            thread.start()
        for thread in started:
            thread.join()
    return {"data": {"written_mb": mb}, "text": f"wrote {mb} MiB"}
