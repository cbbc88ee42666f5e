"""Sessions: every conversation kept in one SQLite file, the microkernel's memory.

``store.py`` reads and writes sessions (``SessionStore``); ``database.py`` owns the file, its
schema and its upgrades; ``encoding.py`` checks and encodes an event for storage;
``journal.py`` is the kernel's write path (events committed in small groups);
``retention.py`` bounds what a plugin's live streams may keep; ``blobs.py`` stores a large
string once.
"""
