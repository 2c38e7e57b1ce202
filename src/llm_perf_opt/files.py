"""Every file the project reads or writes goes through here: writes that cannot lose data, reads
whose every failure is one :class:`~llm_perf_opt.errors.LlmPerfOptError` naming the path.

Writes go to a unique temporary file in the target's own directory (``.<name>.<random>.tmp``),
are flushed and ``fsync``-ed, and are renamed over the target with :func:`os.replace` only once
complete, so a reader sees the old file or the new one, never a part. Any failure removes the
temporary file and leaves the target as it was. Concurrent writers of the same path each rename
their own complete file: the last rename wins and every one of them succeeds. A path that exists
and is not a regular file (``/dev/null``, a FIFO, a terminal) is written directly, since it cannot
be replaced; a symbolic link is written through to its target.

Reads turn every way a file can be unreadable (missing, a directory, no permission, not UTF-8,
not JSON, nested too deeply, an integer with more digits than Python parses, ``NaN``) into one
error of the form ``<field>: cannot read <path>: <what is wrong>``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal, overload

from llm_perf_opt.errors import LlmPerfOptError

__all__ = [
    "atomic_output",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output_file",
    "ensure_output_dir",
    "parse_json",
    "read_json",
    "read_text",
]

_TEMP_SUFFIX = ".tmp"
_TEMP_STEM_CHARS = 64
"""At most this many characters of the target's name go into its temporary name."""


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _name_max(directory: Path) -> int:
    try:
        return os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _is_special(path: Path) -> bool:
    """An existing path that is neither a regular file nor a directory (a device, a FIFO, a socket)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def check_output_file(path: str | Path, *, field: str = "out") -> Path:
    """Check that ``path`` can be written as a file before any work is done; return it.

    Rejects a directory, a missing or non-directory parent, a name longer than the file system
    allows and a parent without write permission, each as one error naming ``field`` and the path.
    Nothing is created.
    """
    target = Path(path)
    parent = target.parent
    if len(os.fsencode(target.name)) > _name_max(parent):
        raise LlmPerfOptError(
            f"{field}: the file name of {str(target)!r} has {len(os.fsencode(target.name))} bytes; "
            f"the file system accepts at most {_name_max(parent)}"
        )
    if _is_special(target):
        return target
    if target.is_dir():
        raise LlmPerfOptError(f"{field}: {str(target)!r} is a directory; expected a file path")
    if not parent.exists():
        raise LlmPerfOptError(f"{field}: the directory of {str(target)!r} does not exist")
    if not parent.is_dir():
        raise LlmPerfOptError(f"{field}: {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise LlmPerfOptError(f"{field}: no permission to write in {str(parent)!r}")
    return target


def ensure_output_dir(path: str | Path, *, field: str = "out_dir") -> Path:
    """Create directory ``path`` (and its parents) if needed and return it; a file in the way, a name
    too long or no permission is one error naming ``field`` and the path."""
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise LlmPerfOptError(f"{field}: {str(directory)!r} exists and is not a directory") from None
    except NotADirectoryError:
        raise LlmPerfOptError(f"{field}: a parent of {str(directory)!r} is a file, not a directory") from None
    except OSError as error:
        raise LlmPerfOptError(
            f"{field}: cannot create directory {str(directory)!r}: {_reason(error)}"
        ) from None
    return directory


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@overload
def atomic_output(
    path: str | Path, *, binary: Literal[False] = ..., field: str = ..., newline: str | None = ...
) -> contextlib.AbstractContextManager[IO[str]]: ...


@overload
def atomic_output(
    path: str | Path, *, binary: Literal[True], field: str = ..., newline: str | None = ...
) -> contextlib.AbstractContextManager[IO[bytes]]: ...


def atomic_output(
    path: str | Path, *, binary: bool = False, field: str = "out", newline: str | None = None
) -> contextlib.AbstractContextManager[IO[Any]]:
    """A file object whose content replaces ``path`` only when the ``with`` block ends without error.

    Text is UTF-8. The temporary file lives in the target's directory so that the rename is atomic;
    on any exception (or a failed write, flush or rename) it is removed and the error is re-raised,
    an :class:`OSError` as one :class:`LlmPerfOptError` naming ``field`` and the path.
    """
    return _atomic_output(_through_links(Path(path)), binary=binary, field=field, newline=newline)


def _through_links(path: Path) -> Path:
    """A symbolic link is written through: its target is replaced, the link kept."""
    try:
        return Path(os.path.realpath(path)) if path.is_symlink() else path
    except OSError:
        return path


@contextlib.contextmanager
def _atomic_output(path: Path, *, binary: bool, field: str, newline: str | None) -> Iterator[IO[Any]]:
    if _is_special(path):
        try:
            with open(path, "wb" if binary else "w", encoding=None if binary else "utf-8") as special:
                yield special
        except OSError as error:
            raise LlmPerfOptError(f"{field}: cannot write {str(path)!r}: {_reason(error)}") from None
        return
    directory = path.parent
    try:
        fd, temp_name = tempfile.mkstemp(
            prefix=f".{path.name[:_TEMP_STEM_CHARS]}.", suffix=_TEMP_SUFFIX, dir=directory
        )
    except OSError as error:
        raise LlmPerfOptError(f"{field}: cannot write {str(path)!r}: {_reason(error)}") from None
    temp = Path(temp_name)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        mode = "wb" if binary else "w"
        encoding = None if binary else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=None if binary else newline) as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
        os.replace(temp, path)
    except OSError as error:
        _remove(temp)
        raise LlmPerfOptError(f"{field}: cannot write {str(path)!r}: {_reason(error)}") from None
    except BaseException:
        _remove(temp)
        raise
    _fsync_directory(directory)


@contextlib.contextmanager
def atomic_path(path: str | Path, *, field: str = "out") -> Iterator[Path]:
    """A temporary path in the target's directory for writers that need a file name (netCDF):
    renamed over ``path`` when the ``with`` block ends without error, removed otherwise."""
    target = _through_links(Path(path))
    try:
        fd, temp_name = tempfile.mkstemp(
            prefix=f".{target.name[:_TEMP_STEM_CHARS]}.", suffix=_TEMP_SUFFIX, dir=target.parent
        )
        os.close(fd)
    except OSError as error:
        raise LlmPerfOptError(f"{field}: cannot write {str(target)!r}: {_reason(error)}") from None
    temp = Path(temp_name)
    try:
        yield temp
        os.chmod(temp, 0o666 & ~_umask())
        if target.is_dir():
            raise IsADirectoryError(errno.EISDIR, "is a directory", str(target))
        os.replace(temp, target)
    except OSError as error:
        _remove(temp)
        raise LlmPerfOptError(f"{field}: cannot write {str(target)!r}: {_reason(error)}") from None
    except BaseException:
        _remove(temp)
        raise
    _fsync_directory(target.parent)


def _remove(temp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        temp.unlink()


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable; a file system that cannot open or sync directories is let be."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | Path, text: str, *, field: str = "out") -> None:
    """Replace ``path`` by ``text`` (UTF-8) atomically (see :func:`atomic_output`)."""
    with atomic_output(path, field=field, newline="") as stream:
        stream.write(text)


def atomic_write_bytes(path: str | Path, data: bytes, *, field: str = "out") -> None:
    """Replace ``path`` by ``data`` atomically (see :func:`atomic_output`)."""
    with atomic_output(path, binary=True, field=field) as stream:
        stream.write(data)


def read_text(path: str | Path, *, field: str = "path") -> str:
    """The UTF-8 text of ``path``; a missing file, a directory, no permission or bytes that are not
    UTF-8 are one error naming ``field`` and the path."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise LlmPerfOptError(f"{field}: cannot read {str(path)!r}: {_reason(error)}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LlmPerfOptError(
            f"{field}: cannot read {str(path)!r}: not UTF-8 text (byte {error.start}: "
            f"{data[error.start : error.start + 1]!r})"
        ) from None


def parse_json(text: str | bytes, *, where: str = "<document>") -> Any:
    """The JSON value of ``text``; every way it can fail is one error prefixed by ``where``.

    ``NaN`` and ``Infinity`` are not JSON and are rejected; so are documents nested too deeply for
    the parser and integers with more digits than Python converts.
    """
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise LlmPerfOptError(f"{where}: not valid JSON ({error})") from None
    except RecursionError:
        raise LlmPerfOptError(f"{where}: not valid JSON (nested too deeply)") from None
    except UnicodeDecodeError as error:
        raise LlmPerfOptError(f"{where}: not UTF-8 text (byte {error.start})") from None
    except _ConstantError as error:
        raise LlmPerfOptError(f"{where}: {error.args[0]} is not a valid JSON number") from None
    except ValueError as error:
        # int() refuses integers of more than sys.get_int_max_str_digits() digits.
        raise LlmPerfOptError(f"{where}: not valid JSON ({error})") from None


class _ConstantError(Exception):
    """``NaN``, ``Infinity`` or ``-Infinity`` in a document."""


def _reject_constant(name: str) -> float:
    raise _ConstantError(name)


def read_json(path: str | Path, *, field: str = "path") -> Any:
    """The JSON value in ``path``: every failure of :func:`read_text` or :func:`parse_json` is one
    error naming ``field`` and the path."""
    text = read_text(path, field=field)
    return parse_json(text, where=f"{field}: cannot read {str(path)!r}")
