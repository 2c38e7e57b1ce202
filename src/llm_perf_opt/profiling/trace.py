"""Import a profiler trace and attribute its measured time to the project's module ids.

Two formats are read, both streamed so that a trace of a whole 50-step run (hundreds of MB) is never
held as one document:

- the Chrome-trace JSON that ``torch.profiler`` (Kineto) exports, plain or gzip-compressed;
- an Nsight Systems SQLite export (``nsys export --type sqlite``) with NVTX ranges.

**Module ranges** are the ranges :func:`llm_perf_opt.profiling.annotate.annotate` opens: a
``user_annotation`` event (an NVTX push/pop range in Nsight) whose name is a module id
(``diffusion.blocks.3.ffn.0``). Other ranges (``ProfilerStep#2``, a user's own labels) are ignored.

**Measured time** is busy time of work: on a trace with device kernels, the summed duration of every
kernel, memory copy and memset (kernels that overlap on several streams are each counted in full); on
a trace without a device, the summed duration of the outermost CPU operators (an ``aten::linear`` and
the ``aten::addmm`` inside it count once). Python overhead between operators is not work and is not
counted. Each piece of work is attributed to the innermost module range open on the launching thread
when it started: a CPU operator at its start, a device kernel at the start of the runtime call that
launched it (``cudaLaunchKernel``, matched by its correlation id), so that asynchronous kernels land
on the module that issued them. Work with no enclosing module range is *unattributed* and reported as
such, by operator name.

**Per module** (:class:`ModuleTiming`): the calls (range instances), the *own* time (work whose
innermost range has this id, over every call), the *total* time (own time of this id and of every id
beneath it in the dotted id tree, as the analytic model sums children), the fastest and slowest call's
own time, the own time per op class (:data:`~.op_flops.OP_CLASSES`: the class of the outermost
operator, or for an Nsight export a heuristic on the kernel name), and the FLOPs the recorded shapes
give (``record_shapes=True``; :mod:`.op_flops`).

Every problem with a file — missing, not a trace, truncated, malformed, without operator events — is
one :class:`~llm_perf_opt.errors.LlmPerfOptError` naming the file and what was expected.
"""

from __future__ import annotations

import bisect
import gzip
import re
import sqlite3
import zlib
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Literal

from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.profiling.op_flops import OP_CLASSES, kernel_op_class, op_class_of, shape_flops

__all__ = [
    "MODULE_ID",
    "STAGES",
    "ModuleTiming",
    "TraceProfile",
    "import_trace",
]

STAGES: Final = ("diffusion", "vae", "text_encoder", "image_encoder")
"""Stage prefixes of module ids; a range is a module range when its name starts with one."""
MODULE_ID: Final = re.compile(rf"(?:{'|'.join(STAGES)})(?:\.[A-Za-z0-9_]+)*")
"""A module id: a stage, then dotted names or indices (``diffusion.blocks.0.self_attn.q``)."""

_DEVICE_CATEGORIES: Final = frozenset({"kernel", "gpu_memcpy", "gpu_memset", "memcpy", "memset"})
"""Chrome-trace categories of device work."""
_LAUNCH_CATEGORIES: Final = frozenset({"cuda_runtime", "cuda_driver", "runtime", "hip_runtime"})
"""Chrome-trace categories of the host calls that launch device work (carry its correlation id)."""
_RANGE_CATEGORY: Final = "user_annotation"
_OPERATOR_CATEGORY: Final = "cpu_op"
"""Categories are compared in lower case."""
_TOP_UNATTRIBUTED: Final = 20
"""Operators listed by name in a profile's unattributed time."""
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_GZIP_MAGIC: Final = b"\x1f\x8b"
_NVTX_RANGES: Final = (59, 60)
"""NVTX event types of push/pop and start/end ranges in an Nsight Systems export."""

Timeline = Literal["device", "host"]
ThreadKey = Hashable


@frozen(kw_only=True)
class ModuleTiming:
    """Measured work of one module id, over every call in the trace. Times in microseconds."""

    module_id: str
    """The module id of the ranges."""
    calls: int
    """Range instances with this id (0 for an id that only has ranges beneath it)."""
    own_us: float
    """Work whose innermost module range has this id, over every call."""
    total_us: float
    """:attr:`own_us` of this id and of every id beneath it in the dotted id tree."""
    fastest_call_us: float
    """Own time of the fastest call (0 without calls)."""
    slowest_call_us: float
    """Own time of the slowest call (0 without calls)."""
    own_us_by_class: dict[str, float]
    """:attr:`own_us` split by op class (every class of :data:`OP_CLASSES`)."""
    own_flops: int
    """FLOPs of the own operators, from their recorded shapes (0 without shapes)."""
    total_flops: int
    """:attr:`own_flops` of this id and of every id beneath it."""


@frozen(kw_only=True)
class TraceProfile:
    """A trace attributed to module ids. Times in microseconds."""

    source: str
    """File name of the trace."""
    trace_format: str
    """``chrome`` (torch.profiler JSON) or ``nsys-sqlite``."""
    timeline: str
    """``device`` (kernels measured) or ``host`` (CPU operators measured, no device work in the trace)."""
    shapes_recorded: bool
    """Whether operators carry input shapes, so FLOPs could be counted."""
    steps: int
    """``ProfilerStep#N`` ranges in the trace (0 without a profiler schedule)."""
    work_us: float
    """All measured work in the trace."""
    unattributed_us: float
    """Work outside every module range."""
    unattributed_by_op: dict[str, float]
    """The largest unattributed operators (or kernels) by name, at most 20."""
    modules: tuple[ModuleTiming, ...]
    """Every module id with ranges, and every dotted ancestor of one, sorted by id."""

    @property
    def attributed_fraction(self) -> float:
        """Share of the work attributed to a module range (1 for a trace without work)."""
        return 1.0 - self.unattributed_us / self.work_us if self.work_us else 1.0

    def module(self, module_id: str) -> ModuleTiming:
        """The timing of one id; an unknown id is an error listing how many ids there are."""
        for timing in self.modules:
            if timing.module_id == module_id:
                return timing
        raise LlmPerfOptError(
            f"module_id: {module_id!r} has no range in {self.source} ({len(self.modules)} module ids)"
        )


# ─── the events every format is reduced to ──────────────────────────────────────────────────────


@frozen
class _Range:
    thread: ThreadKey
    start: float
    end: float
    name: str


@frozen
class _Work:
    """One piece of measured work placed at ``(thread, at)``: where it was issued."""

    thread: ThreadKey
    at: float
    duration: float
    name: str
    op_class: str


@frozen
class _Flops:
    thread: ThreadKey
    at: float
    flops: int


@frozen(kw_only=True)
class _Events:
    trace_format: str
    timeline: Timeline
    shapes_recorded: bool
    steps: int
    ranges: list[_Range]
    work: list[_Work]
    flops: list[_Flops]


def _attribute(source: str, events: _Events) -> TraceProfile:
    """Innermost module range per piece of work and per counted op, per thread, by one sweep."""
    by_thread: dict[ThreadKey, list[_Range]] = defaultdict(list)
    for item in events.ranges:
        by_thread[item.thread].append(item)
    instance_ids: list[str] = []
    ordered: dict[ThreadKey, list[tuple[float, float, int]]] = {}
    for thread, ranges in by_thread.items():
        ranges.sort(key=lambda r: (r.start, -r.end))
        rows = []
        for item in ranges:
            rows.append((item.start, item.end, len(instance_ids)))
            instance_ids.append(item.name)
        ordered[thread] = rows
    work_ranges = _innermost(ordered, [(piece.thread, piece.at) for piece in events.work])
    flop_ranges = _innermost(ordered, [(counted.thread, counted.at) for counted in events.flops])
    own = [0.0] * len(instance_ids)
    own_by_class: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(OP_CLASSES, 0.0))
    unattributed: dict[str, float] = defaultdict(float)
    work_us = 0.0
    for piece, index in zip(events.work, work_ranges, strict=True):
        work_us += piece.duration
        if index is None:
            unattributed[piece.name] += piece.duration
            continue
        own[index] += piece.duration
        own_by_class[instance_ids[index]][piece.op_class] += piece.duration
    own_flops: dict[str, int] = defaultdict(int)
    for counted, index in zip(events.flops, flop_ranges, strict=True):
        if index is not None:
            own_flops[instance_ids[index]] += counted.flops
    calls: dict[str, list[float]] = defaultdict(list)
    for index, module_id in enumerate(instance_ids):
        calls[module_id].append(own[index])
    return TraceProfile(
        source=source,
        trace_format=events.trace_format,
        timeline=events.timeline,
        shapes_recorded=events.shapes_recorded,
        steps=events.steps,
        work_us=work_us,
        unattributed_us=sum(unattributed.values()),
        unattributed_by_op=dict(sorted(unattributed.items(), key=lambda kv: -kv[1])[:_TOP_UNATTRIBUTED]),
        modules=tuple(_roll_up(calls, own_by_class, own_flops)),
    )


def _innermost(
    ordered: Mapping[ThreadKey, list[tuple[float, float, int]]], points: list[tuple[ThreadKey, float]]
) -> list[int | None]:
    """For each ``(thread, time)`` point, the index of the innermost range of that thread covering it.

    One sweep per thread over its ranges (sorted by start, outer first) and its sorted points, with
    the open ranges on a stack: ranges of one thread nest, so the top of the stack is the innermost.
    """
    found: list[int | None] = [None] * len(points)
    by_thread: dict[ThreadKey, list[int]] = defaultdict(list)
    for position, (thread, _) in enumerate(points):
        by_thread[thread].append(position)
    for thread, positions in by_thread.items():
        rows = ordered.get(thread)
        if not rows:
            continue
        positions.sort(key=lambda p: points[p][1])
        stack: list[tuple[float, float, int]] = []
        next_row = 0
        for position in positions:
            at = points[position][1]
            while next_row < len(rows) and rows[next_row][0] <= at:
                while stack and stack[-1][1] <= rows[next_row][0]:
                    stack.pop()
                stack.append(rows[next_row])
                next_row += 1
            while stack and stack[-1][1] <= at:
                stack.pop()
            if stack:
                found[position] = stack[-1][2]
    return found


def _ancestors(module_id: str) -> Iterator[str]:
    """``diffusion.blocks.0.ffn`` → itself, ``diffusion.blocks.0``, ``diffusion.blocks``, ``diffusion``."""
    parts = module_id.split(".")
    for end in range(len(parts), 0, -1):
        yield ".".join(parts[:end])


def _roll_up(
    calls: Mapping[str, list[float]],
    own_by_class: Mapping[str, Mapping[str, float]],
    own_flops: Mapping[str, int],
) -> list[ModuleTiming]:
    total_us: dict[str, float] = defaultdict(float)
    total_flops: dict[str, int] = defaultdict(int)
    for module_id, per_call in calls.items():
        for ancestor in _ancestors(module_id):
            total_us[ancestor] += sum(per_call)
            total_flops[ancestor] += own_flops.get(module_id, 0)
    timings = []
    for module_id in sorted(total_us):
        per_call = calls.get(module_id, [])
        timings.append(
            ModuleTiming(
                module_id=module_id,
                calls=len(per_call),
                own_us=sum(per_call),
                total_us=total_us[module_id],
                fastest_call_us=min(per_call, default=0.0),
                slowest_call_us=max(per_call, default=0.0),
                own_us_by_class=dict(own_by_class.get(module_id, dict.fromkeys(OP_CLASSES, 0.0))),
                own_flops=own_flops.get(module_id, 0),
                total_flops=total_flops[module_id],
            )
        )
    return timings


# ─── Chrome-trace JSON (torch.profiler / Kineto) ───────────────────────────────────────────────


@frozen
class _Operator:
    start: float
    end: float
    name: str
    flops: int | None


def _number(source: str, position: int, event: Mapping[str, Any], key: str) -> float:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LlmPerfOptError(
            f"trace: {source}: event {position} ({event.get('name')!r}) has no numeric {key!r}, got {value!r}"
        )
    return float(value)


def _chrome_events(path: Path, stream: Iterable[Any]) -> _Events:
    source = path.name
    ranges: list[_Range] = []
    operators: dict[ThreadKey, list[_Operator]] = defaultdict(list)
    kernels: list[tuple[Any, float, str]] = []
    launches: dict[Any, tuple[ThreadKey, float]] = {}
    shapes_recorded = False
    steps = 0
    seen = 0
    for position, event in enumerate(stream):
        seen += 1
        if not isinstance(event, dict):
            raise LlmPerfOptError(f"trace: {source}: event {position} must be a JSON object, got {event!r}")
        if event.get("ph") != "X":
            continue
        category = str(event.get("cat", "")).lower()  # older Kineto versions write "Kernel", "Runtime"
        name = event.get("name")
        if not isinstance(name, str):
            continue
        thread = (event.get("pid"), event.get("tid"))
        if category == _RANGE_CATEGORY:
            start = _number(source, position, event, "ts")
            if MODULE_ID.fullmatch(name):
                ranges.append(_Range(thread, start, start + _number(source, position, event, "dur"), name))
            elif name.startswith("ProfilerStep#"):
                steps += 1
        elif category == _OPERATOR_CATEGORY:
            start = _number(source, position, event, "ts")
            args = event.get("args") or {}
            op_flops = None
            if "Input Dims" in args:
                shapes_recorded = True
                try:
                    op_flops = shape_flops(name, args["Input Dims"], args.get("Concrete Inputs"))
                except LlmPerfOptError as error:
                    raise LlmPerfOptError(f"trace: {source}: event {position}: {error}") from None
            duration = _number(source, position, event, "dur")
            operators[thread].append(_Operator(start, start + duration, name, op_flops))
        elif category in _DEVICE_CATEGORIES:
            correlation = (event.get("args") or {}).get("correlation")
            kernels.append((correlation, _number(source, position, event, "dur"), name))
        elif category in _LAUNCH_CATEGORIES:
            correlation = (event.get("args") or {}).get("correlation")
            if correlation is not None:
                launches[correlation] = (thread, _number(source, position, event, "ts"))
    if not seen:
        raise LlmPerfOptError(
            f"trace: {source}: no trace events; expected a JSON object with a 'traceEvents' array, "
            "as torch.profiler's export_chrome_trace writes"
        )
    if not operators and not kernels:
        raise LlmPerfOptError(
            f"trace: {source}: not a PyTorch profiler trace: no 'cpu_op' or 'kernel' events among {seen}"
        )
    outermost, flops = _sweep_operators(operators)
    if kernels:
        work = []
        for correlation, duration, name in kernels:
            launch = launches.get(correlation)
            if launch is None:
                work.append(_Work(None, 0.0, duration, name, "elementwise"))
                continue
            launch_thread, at = launch
            enclosing = _enclosing(outermost.get(launch_thread, ([], [])), at)
            op_class = op_class_of(enclosing) if enclosing else kernel_op_class(name)
            work.append(_Work(launch_thread, at, duration, enclosing or name, op_class))
        timeline: Timeline = "device"
    else:
        work = [
            _Work(thread, op.start, op.end - op.start, op.name, op_class_of(op.name))
            for thread, ops in outermost.items()
            for op in ops[1]
        ]
        timeline = "host"
    return _Events(
        trace_format="chrome",
        timeline=timeline,
        shapes_recorded=shapes_recorded,
        steps=steps,
        ranges=ranges,
        work=work,
        flops=flops,
    )


def _sweep_operators(
    operators: Mapping[ThreadKey, list[_Operator]],
) -> tuple[dict[ThreadKey, tuple[list[float], list[_Operator]]], list[_Flops]]:
    """Per thread, the outermost operators (sorted, with their starts for bisection), and the FLOPs of
    every counted operator that no counted operator encloses."""
    outermost: dict[ThreadKey, tuple[list[float], list[_Operator]]] = {}
    flops: list[_Flops] = []
    for thread, ops in operators.items():
        ops.sort(key=lambda op: (op.start, -op.end))
        open_ops: list[_Operator] = []
        top: list[_Operator] = []
        for op in ops:
            while open_ops and open_ops[-1].end <= op.start:
                open_ops.pop()
            if not open_ops:
                top.append(op)
            if op.flops is not None and not any(o.flops is not None for o in open_ops):
                flops.append(_Flops(thread, op.start, op.flops))
            open_ops.append(op)
        outermost[thread] = ([op.start for op in top], top)
    return outermost, flops


def _enclosing(outermost: tuple[list[float], list[_Operator]], at: float) -> str | None:
    """Name of the outermost operator running at ``at`` on a thread, if any."""
    starts, ops = outermost
    position = bisect.bisect_right(starts, at) - 1
    if position >= 0 and ops[position].start <= at < ops[position].end:
        return ops[position].name
    return None


def _read_chrome(path: Path, compressed: bool) -> _Events:
    try:
        import ijson
    except ImportError:
        raise LlmPerfOptError(
            "trace: reading a Chrome trace needs ijson; install the profiling extra "
            '(pip install -e ".[profiling]")'
        ) from None

    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as handle:
            return _chrome_events(path, ijson.items(handle, "traceEvents.item", use_float=True))
    except ijson.JSONError as error:
        raise LlmPerfOptError(
            f"trace: {path.name}: truncated or malformed JSON ({error}); expected a complete Chrome trace"
        ) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise LlmPerfOptError(f"trace: {path.name}: truncated or corrupt gzip file ({error})") from None
    except UnicodeDecodeError as error:
        raise LlmPerfOptError(f"trace: {path.name}: not UTF-8 JSON ({error})") from None


# ─── Nsight Systems SQLite export ───────────────────────────────────────────────────────────────


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _nsys_events(path: Path, db: sqlite3.Connection) -> _Events:
    source = path.name
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    required = ("NVTX_EVENTS", "CUPTI_ACTIVITY_KIND_RUNTIME", "CUPTI_ACTIVITY_KIND_KERNEL", "StringIds")
    missing = [table for table in required if table not in tables]
    if missing:
        raise LlmPerfOptError(
            f"trace: {source}: not an Nsight Systems export with CUDA and NVTX traces: missing tables "
            f"{', '.join(missing)} (profile with nsys --trace=cuda,nvtx and export --type sqlite)"
        )
    text = "COALESCE(n.text, s.value)" if "textId" in _columns(db, "NVTX_EVENTS") else "n.text"
    join = "LEFT JOIN StringIds s ON s.id = n.textId" if "textId" in _columns(db, "NVTX_EVENTS") else ""
    ranges = []
    steps = 0
    placeholders = ", ".join("?" * len(_NVTX_RANGES))
    for start, end, thread, name in db.execute(
        f"SELECT n.start, n.end, n.globalTid, {text} FROM NVTX_EVENTS n {join} "
        f"WHERE n.eventType IN ({placeholders}) AND n.end IS NOT NULL",
        _NVTX_RANGES,
    ):
        if isinstance(name, str) and MODULE_ID.fullmatch(name):
            ranges.append(_Range(thread, start / 1e3, end / 1e3, name))
        elif isinstance(name, str) and name.startswith("ProfilerStep#"):
            steps += 1
    work = []
    activity_tables = [
        (table, name_column)
        for table, name_column in (
            ("CUPTI_ACTIVITY_KIND_KERNEL", "demangledName"),
            ("CUPTI_ACTIVITY_KIND_MEMCPY", None),
            ("CUPTI_ACTIVITY_KIND_MEMSET", None),
        )
        if table in tables
    ]
    for table, name_column in activity_tables:
        label = "s.value" if name_column else f"'{table.rsplit('_', 1)[-1].lower()}'"
        names = f"LEFT JOIN StringIds s ON s.id = a.{name_column}" if name_column else ""
        query = (
            f"SELECT a.start, a.end, r.globalTid, r.start, {label} FROM {table} a {names} "
            "LEFT JOIN CUPTI_ACTIVITY_KIND_RUNTIME r ON r.correlationId = a.correlationId"
        )
        if "globalPid" in _columns(db, table):
            query += " AND r.globalTid / 16777216 = a.globalPid / 16777216"
        for start, end, thread, launched, name in db.execute(query):
            label_text = name if isinstance(name, str) else table
            work.append(
                _Work(
                    thread,
                    (launched if launched is not None else 0) / 1e3,
                    (end - start) / 1e3,
                    label_text,
                    kernel_op_class(label_text),
                )
            )
    if not work:
        raise LlmPerfOptError(f"trace: {source}: the export holds no kernels, copies or memsets")
    return _Events(
        trace_format="nsys-sqlite",
        timeline="device",
        shapes_recorded=False,
        steps=steps,
        ranges=ranges,
        work=work,
        flops=[],
    )


def _read_nsys(path: Path) -> _Events:
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise LlmPerfOptError(f"trace: {path.name}: cannot open the SQLite export ({error})") from None
    try:
        return _nsys_events(path, db)
    except sqlite3.Error as error:
        raise LlmPerfOptError(
            f"trace: {path.name}: unreadable or truncated Nsight Systems export ({error})"
        ) from None
    finally:
        db.close()


def import_trace(path: str | Path) -> TraceProfile:
    """Read a torch.profiler Chrome trace (``.json`` or ``.json.gz``) or an Nsight Systems SQLite
    export, recognised by its first bytes, and attribute its work to module ids."""
    trace = Path(path)
    try:
        with trace.open("rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError as error:
        raise LlmPerfOptError(f"trace: cannot read {trace}: {error.strerror}") from None
    if head.startswith(_SQLITE_MAGIC):
        events = _read_nsys(trace)
    elif head.startswith(_GZIP_MAGIC):
        events = _read_chrome(trace, compressed=True)
    elif head.lstrip()[:1] in (b"{", b"["):
        events = _read_chrome(trace, compressed=False)
    else:
        raise LlmPerfOptError(
            f"trace: {trace.name}: not a profiler trace; accepted: torch.profiler Chrome-trace JSON "
            "(plain or gzip) or an Nsight Systems SQLite export"
        )
    return _attribute(trace.name, events)
