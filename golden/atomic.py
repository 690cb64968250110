"""Atomic file output: a file either holds its complete new contents or is untouched.

Every command that writes a result (checkpoints, exports, rankings, hardened networks,
products, reports) goes through :func:`atomic_output`, so an error or an interrupt
never leaves a half-written file behind.
"""

import os
import tempfile
from contextlib import contextmanager

__all__ = ["atomic_output"]


@contextmanager
def atomic_output(path, mode="wb", **open_arguments):
    """Open a temporary file next to ``path``; on success rename it over ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        Final location; its directory must exist.
    mode : {"wb", "w"}
        Binary or text.
    **open_arguments
        Passed to :func:`open` (e.g. ``newline=""`` for CSV).

    Yields
    ------
    file object
        The temporary file. If the ``with`` block raises, it is deleted and ``path``
        keeps its previous contents (or stays absent).
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **open_arguments) as file:
            yield file
        # mkstemp creates the file 0600; give it the mode of a plainly created file.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
