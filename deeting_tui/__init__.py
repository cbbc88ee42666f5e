"""Deeting: a terminal AI OS shell whose every ability is a sandboxed plugin."""

__version__ = "0.1.0"
