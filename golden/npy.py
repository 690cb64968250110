"""The one reader of the user's ``.npy`` files (``neuroharden gemm --a/--b``).

:func:`numpy.load` guesses the format from the first bytes: a file that starts with the
zip magic is opened as an ``.npz`` archive (and a damaged one raises
``zipfile.BadZipFile``), a pickle would be unpickled if allowed. :func:`read_npy` reads
exactly one format, the ``.npy`` one (magic ``\\x93NUMPY``), never unpickles, and turns
every way a file can be wrong into a one-line :class:`ValueError`.
"""

import numpy as np

__all__ = ["NPY_MAGIC", "read_npy"]

#: First bytes of every ``.npy`` file (:mod:`numpy.lib.format`).
NPY_MAGIC = b"\x93NUMPY"


def read_npy(path):
    """Read one array from a ``.npy`` file.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        A missing or unreadable file, another format (an ``.npz`` archive, a pickle, text),
        an object array, a damaged header or a truncated body.
    """
    try:
        with open(path, "rb") as file:
            if file.read(len(NPY_MAGIC)) != NPY_MAGIC:
                raise ValueError(f"{path}: not a .npy file (no \\x93NUMPY magic)")
            file.seek(0)
            array = np.lib.format.read_array(file, allow_pickle=False)
            if file.read(1):
                raise ValueError(f"{path}: not a .npy file (data after the array)")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not a .npy file") from None
    except ValueError as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(message if message.startswith(str(path)) else
                         f"{path}: not a readable .npy array ({message})") from None
    except (OSError, EOFError, SyntaxError, TypeError, OverflowError, MemoryError) as error:
        raise ValueError(f"{path}: not a readable .npy array ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''})") from None
    return array
