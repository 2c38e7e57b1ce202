"""Generated evaluator source cached on disk, so a new process skips building and compiling.

Building a tree's expressions and lambdifying them takes seconds; the source SymPy generates is
plain Python that ``exec`` loads in milliseconds. Entries are keyed by a hash of everything the
source is derived from — the caller's key material (the expressions, or what determines them) and
:func:`code_fingerprint` (this package's source and data files and the versions of Python, SymPy
and NumPy), so any change to a formula, a declaration or a dependency makes a new key.

Entries live in the user cache directory (``platformdirs.user_cache_dir("llm-perf-opt")``; the
environment variable ``LLM_PERF_OPT_CACHE_DIR`` points elsewhere, ``off`` disables the cache). Each is
written to a unique temporary file in that directory and renamed into place, so concurrent processes
never see a partial entry; an entry whose checksum does not match, or that does not load, is ignored
and rebuilt. A cache that cannot be written (read-only home, full disk) only costs speed.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import linecache
import os
import sys
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Final

import numpy
import platformdirs
import sympy

__all__ = [
    "CACHE_ENV",
    "FUNCTION_NAME",
    "cache_directory",
    "code_fingerprint",
    "load_function",
    "load_generated",
]

CACHE_ENV: Final = "LLM_PERF_OPT_CACHE_DIR"
FUNCTION_NAME: Final = "_lambdifygenerated"
"""The name lambdify gives the functions it generates."""
_HEADER: Final = "# llm-perf-opt evaluator cache entry, sha256 "


@functools.cache
def code_fingerprint() -> str:
    """A hash of this package's ``.py`` and ``.json`` files and of the Python, SymPy and NumPy versions."""
    digest = hashlib.sha256(f"{sys.version}|{sympy.__version__}|{numpy.__version__}".encode())
    root = resources.files("llm_perf_opt")
    for path in sorted(Path(str(root)).rglob("*"), key=str):
        if path.suffix in (".py", ".json") and path.is_file():
            digest.update(str(path.relative_to(str(root))).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def cache_directory() -> Path | None:
    """Where entries live, or ``None`` when the cache is off."""
    configured = os.environ.get(CACHE_ENV)
    if configured is not None and configured.strip().lower() in ("off", "0", "none", ""):
        return None
    base = Path(configured) if configured else Path(platformdirs.user_cache_dir("llm-perf-opt"))
    return base / "evaluators"


def _entry_key(material: str) -> str:
    return hashlib.sha256(f"{code_fingerprint()}\n{material}".encode()).hexdigest()


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    header, _, body = text.partition("\n")
    if not header.startswith(_HEADER) or header[len(_HEADER) :] != hashlib.sha256(body.encode()).hexdigest():
        return None
    return body


def _write(path: Path, body: str) -> None:
    text = f"{_HEADER}{hashlib.sha256(body.encode()).hexdigest()}\n{body}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError:
        return


def _load(body: str, namespace: dict[str, Any], filename: str) -> dict[str, Any] | None:
    scope = dict(namespace)
    try:
        exec(compile(body, filename, "exec"), scope)  # our own generated source
    except Exception:  # a broken entry is rebuilt
        return None
    if not callable(scope.get(FUNCTION_NAME)):
        return None
    # inspect.getsource reads the source from here
    linecache.cache[filename] = (len(body), None, body.splitlines(keepends=True), filename)
    return scope


def load_generated(
    material: str,
    make_source: Callable[[], str],
    namespace: dict[str, Any],
    *,
    check: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """The names defined by generated source for ``material`` (a string that determines it): from
    the disk cache when an intact entry exists, else ``make_source()``, stored for next time.

    The source defines :data:`FUNCTION_NAME` (a lambdified function) and may define constants;
    ``namespace`` is what it refers to (``numpy``, ``Fraction`` …); an entry that fails ``check``
    (a guard against a key that does not determine the source) is rebuilt like a corrupt one.
    """
    directory = cache_directory()
    path = None if directory is None else directory / f"{_entry_key(material)}.py"
    if path is not None:
        body = _read(path)
        if body is not None:
            scope = _load(body, namespace, str(path))
            if scope is not None and (check is None or check(scope)):
                return scope
    source = make_source()
    filename = str(path) if path is not None else f"<generated {_entry_key(material)[:12]}>"
    scope = _load(source, namespace, filename)
    if scope is None:
        raise AssertionError("generated source does not load")
    if path is not None:
        _write(path, source)
    return scope


def load_function(
    material: str, make: Callable[[], Callable[..., Any]], namespace: dict[str, Any], *, outputs: int
) -> Callable[..., Any]:
    """The lambdified function for ``material``, returning ``outputs`` values: :func:`load_generated`
    of ``make()``'s source, an entry of another output count rebuilt."""
    scope = load_generated(
        material,
        lambda: f"{inspect.getsource(make())}\nOUTPUT_COUNT = {outputs}\n",
        namespace,
        check=lambda found: found.get("OUTPUT_COUNT") == outputs,
    )
    return scope[FUNCTION_NAME]  # type: ignore[no-any-return]
