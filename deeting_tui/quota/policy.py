"""The watchdog's timing: read by the Confinement (watchdog.py) and by each Box (box.py)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WatchdogPolicy"]


@dataclass(frozen=True)
class WatchdogPolicy:
    """Timing knobs; tests shrink them, the product keeps the defaults."""

    interval: float = 0.5  # seconds between samples
    cpu_window: float = 10.0  # cpu_percent is an average over this
    idle_window: float = 3.0  # idle_cpu_percent over this: a spinning thread goes in seconds
    disk_check: float = 30.0  # watched folders are walked, as a check, at most this often
    disk_interval: float = 5.0  # folders not watched are walked at most this often ...
    disk_after_call: float = 1.0  # ... and this long after the last walk once a call ended
