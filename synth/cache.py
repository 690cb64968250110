"""A directory of JSON results keyed by a hash of everything that determines them.

A key covers the generated Verilog, the script text and the tool versions, so a changed
design, script or tool misses. Entries are written to a temporary file in the same
directory and renamed into place, so an interrupted run leaves no half-written entry.
"""

import hashlib
import json
from pathlib import Path

from neuroharden.golden.atomic import atomic_output

__all__ = ["DEFAULT_DIR", "Cache", "key_of"]

#: Default cache directory (relative to the working directory).
DEFAULT_DIR = Path("build") / "synth-cache"


def key_of(*parts):
    """SHA-256 hex digest of the parts (strings, or JSON-serialisable values)."""
    digest = hashlib.sha256()
    for part in parts:
        text = part if isinstance(part, str) else json.dumps(part, sort_keys=True)
        data = text.encode()
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


class Cache:
    """JSON entries in ``directory``, one file per key; ``None`` disables caching.

    Attributes
    ----------
    hits, misses : int
        Counts of :meth:`get` calls that found / did not find an entry.
    """

    def __init__(self, directory=DEFAULT_DIR):
        self.directory = None if directory is None else Path(directory)
        self.hits = 0
        self.misses = 0

    def path(self, key):
        return self.directory / f"{key}.json"

    def get(self, key):
        """The stored value of ``key``, or None (an unreadable entry counts as a miss)."""
        if self.directory is not None:
            try:
                value = json.loads(self.path(key).read_text())
            except (OSError, ValueError):
                pass
            else:
                self.hits += 1
                return value
        self.misses += 1
        return None

    def put(self, key, value):
        """Store ``value`` atomically (temporary file + :func:`os.replace`)."""
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_output(self.path(key), "w") as file:
            json.dump(value, file, sort_keys=True, indent=1)
