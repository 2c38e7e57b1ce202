"""Importing traces: the hand-checked golden trace, gzip, Nsight Systems exports and bad files."""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.profiling.trace import TraceProfile, import_trace
from tests.profiling.conftest import GOLDEN

DEVICE_TRACE = GOLDEN / "device_trace.json"


def _check_golden(profile: TraceProfile) -> None:
    """The attribution of ``golden/device_trace.json``, worked out by hand from its events."""
    # work: kernels 100 + 20 + 300 + 200 + 10, copy 40, the kernel without a launch 5 = 675 µs
    assert profile.work_us == 675
    # outside every module: the copy (launched at 605, after diffusion ends at 510) and the orphan kernel
    assert profile.unattributed_us == 45
    assert profile.unattributed_by_op == {"aten::copy_": 40, "mystery_kernel": 5}
    assert profile.attributed_fraction == pytest.approx(630 / 675)
    assert profile.steps == 1
    # the GEMM launched at 40 inside ffn.0 (35-75), itself inside the GELU wrapper ffn.1 (30-130)
    ffn0 = profile.module("diffusion.blocks.0.ffn.0")
    assert (ffn0.calls, ffn0.own_us, ffn0.own_us_by_class["matmul"]) == (1, 100, 100)
    assert ffn0.own_flops == 2 * 8 * 64 * 256  # addmm [8, 64] @ [64, 256]; aten::linear not counted again
    ffn1 = profile.module("diffusion.blocks.0.ffn.1")
    assert (ffn1.own_us, ffn1.own_us_by_class["elementwise"], ffn1.own_flops) == (20, 20, 0)
    ffn = profile.module("diffusion.blocks.0.ffn")  # no range of its own: the sum of ffn.0 and ffn.1
    assert (ffn.calls, ffn.own_us, ffn.total_us, ffn.total_flops) == (0, 0, 120, 262144)
    attn = profile.module("diffusion.blocks.0.self_attn")  # two calls: 300 µs and 200 µs of kernels
    assert (attn.calls, attn.own_us, attn.fastest_call_us, attn.slowest_call_us) == (2, 500, 200, 300)
    assert attn.own_us_by_class["attention"] == 500
    assert attn.own_flops == 2 * 4 * 1 * 2 * 8 * 16 * 32  # 4·B·H·Sq·Sk·D per call
    block = profile.module("diffusion.blocks.0")
    assert (block.calls, block.own_us, block.total_us) == (1, 0, 620)
    root = profile.module("diffusion")  # its own add kernel, launched at 402 after the block ended at 320
    assert (root.calls, root.own_us, root.total_us) == (1, 10, 630)
    assert [t.module_id for t in profile.modules] == [
        "diffusion",
        "diffusion.blocks",
        "diffusion.blocks.0",
        "diffusion.blocks.0.ffn",
        "diffusion.blocks.0.ffn.0",
        "diffusion.blocks.0.ffn.1",
        "diffusion.blocks.0.self_attn",
    ]


def test_golden_trace_attribution() -> None:
    """Device kernels land on the innermost module range open when they were launched."""
    profile = import_trace(DEVICE_TRACE)
    assert (profile.trace_format, profile.timeline, profile.shapes_recorded) == ("chrome", "device", True)
    _check_golden(profile)


def test_gzip_trace_reads_the_same(tmp_path: Path) -> None:
    """A gzip-compressed trace gives the same attribution as the plain file."""
    packed = tmp_path / "trace.json.gz"
    with DEVICE_TRACE.open("rb") as plain, gzip.open(packed, "wb") as out:
        shutil.copyfileobj(plain, out)
    _check_golden(import_trace(packed))


def _nsys_export(path: Path) -> Path:
    """The golden trace's events as an Nsight Systems SQLite export (times in ns, names in StringIds)."""
    trace = json.loads(DEVICE_TRACE.read_text(encoding="utf-8"))["traceEvents"]
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE NVTX_EVENTS (start INTEGER, end INTEGER, eventType INTEGER, text TEXT,
                                  globalTid INTEGER, textId INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INTEGER, end INTEGER, globalTid INTEGER,
                                                  correlationId INTEGER, nameId INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER, end INTEGER, globalPid INTEGER,
                                                 correlationId INTEGER, demangledName INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_MEMCPY (start INTEGER, end INTEGER, globalPid INTEGER,
                                                 correlationId INTEGER);
        """
    )
    process = 7 << 24
    thread = process + 1
    strings: dict[str, int] = {}

    def string(value: str) -> int:
        if value not in strings:
            strings[value] = len(strings) + 1
            db.execute("INSERT INTO StringIds VALUES (?, ?)", (strings[value], value))
        return strings[value]

    for event in trace:
        if event.get("ph") != "X":
            continue
        start, end = int(event["ts"] * 1000), int((event["ts"] + event["dur"]) * 1000)
        correlation = event.get("args", {}).get("correlation")
        if event["cat"] == "user_annotation":  # half the names inline, half through StringIds
            inline = len(strings) % 2 == 0
            row = (
                start,
                end,
                59,
                event["name"] if inline else None,
                thread,
                None if inline else string(event["name"]),
            )
            db.execute("INSERT INTO NVTX_EVENTS VALUES (?, ?, ?, ?, ?, ?)", row)
        elif event["cat"] == "cuda_runtime":
            db.execute(
                "INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (?, ?, ?, ?, ?)",
                (start, end, thread, correlation, string(event["name"])),
            )
        elif event["cat"] == "kernel":
            db.execute(
                "INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (?, ?, ?, ?, ?)",
                (start, end, process, correlation, string(event["name"])),
            )
        elif event["cat"] == "gpu_memcpy":
            db.execute(
                "INSERT INTO CUPTI_ACTIVITY_KIND_MEMCPY VALUES (?, ?, ?, ?)",
                (start, end, process, correlation),
            )
    db.commit()
    db.close()
    return path


def test_nsight_export_attributes_kernels_to_nvtx_ranges(tmp_path: Path) -> None:
    """The same run as an Nsight Systems export: the same times per module, op classes from kernel names."""
    profile = import_trace(_nsys_export(tmp_path / "run.sqlite"))
    assert (profile.trace_format, profile.timeline, profile.shapes_recorded) == (
        "nsys-sqlite",
        "device",
        False,
    )
    assert profile.work_us == pytest.approx(675)
    assert profile.unattributed_us == pytest.approx(45)
    assert set(profile.unattributed_by_op) == {"memcpy", "mystery_kernel"}
    assert profile.module("diffusion.blocks.0.self_attn").own_us == pytest.approx(500)
    assert profile.module("diffusion.blocks.0.self_attn").own_us_by_class["attention"] == pytest.approx(500)
    assert profile.module("diffusion.blocks.0.ffn.0").own_us_by_class["matmul"] == pytest.approx(100)
    assert profile.module("diffusion.blocks.0.ffn").total_us == pytest.approx(120)
    assert profile.module("diffusion").total_us == pytest.approx(630)
    assert profile.steps == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::mm"', "truncated or malformed JSON"),
        (b'{"traceEvents": [}', "truncated or malformed JSON"),
        (b'{"name": "not a trace"}', "no trace events; expected a JSON object with a 'traceEvents' array"),
        (
            b'{"traceEvents": [{"ph": "X", "cat": "blink", "name": "Paint", "ts": 1, "dur": 2}]}',
            "not a PyTorch profiler trace: no 'cpu_op' or 'kernel' events among 1",
        ),
        (
            b'{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": "soon", "dur": 2}]}',
            "event 0 \\('aten::mm'\\) has no numeric 'ts', got 'soon'",
        ),
        (
            b'{"traceEvents": [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 1, "dur": 2,'
            b' "args": {"Input Dims": [[2, 3]]}}]}',
            "event 0: Input Dims: aten::mm shapes \\[\\[2, 3\\]\\] do not fit",
        ),
        (b"\x89PNG\r\n\x1a\n....", "not a profiler trace; accepted: torch.profiler Chrome-trace JSON"),
    ],
)
def test_bad_traces_give_one_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    """Truncated, malformed and foreign files are one LlmPerfOptError naming the file and the problem."""
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    with pytest.raises(LlmPerfOptError, match=f"trace: bad.json: {message}"):
        import_trace(path)


def test_truncated_gzip_and_foreign_sqlite_are_errors(tmp_path: Path) -> None:
    """A gzip file cut short and an SQLite file that is no Nsight export are clear errors."""
    packed = gzip.compress(DEVICE_TRACE.read_bytes())
    cut = tmp_path / "cut.json.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(LlmPerfOptError, match=r"trace: cut.json.gz: truncated or corrupt gzip file"):
        import_trace(cut)
    foreign = tmp_path / "other.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(LlmPerfOptError, match="missing tables NVTX_EVENTS, CUPTI_ACTIVITY_KIND_RUNTIME"):
        import_trace(foreign)
    with pytest.raises(LlmPerfOptError, match=r"trace: cannot read .*missing.json: No such file"):
        import_trace(tmp_path / "missing.json")
