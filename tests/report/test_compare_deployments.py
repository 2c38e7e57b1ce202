"""The compare-deployments command: the engine's figures per entry, sorted by time, the fit flag,
the energy and cost estimates, the entry syntax and every bad input as one clear error."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from llm_perf_opt.cli import main
from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.deployment.value import Parallelism
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import get_accelerator
from llm_perf_opt.models import build_deployment
from llm_perf_opt.report.compare_deployments import (
    DeploymentEntry,
    WorkloadSpec,
    compare_deployments,
    format_comparison,
    load_comparison_file,
    parse_entry,
)
from llm_perf_opt.symbolic.symbols import Workload

VARIANT = "t2v-1.3b"
SPEC = WorkloadSpec(variant=VARIANT, frames=81, height=480, width=832, steps=10)
WORKLOAD = Workload(batch=1, frames=81, height=480, width=832, steps=10, text_len=512)
"""What :data:`SPEC` runs: the prompt padded to 512 tokens, as the official pipeline does."""
ENTRIES = (
    DeploymentEntry(device="rtx4090", name="desk"),
    DeploymentEntry(device="h100", gpus=4, attention_kernel="fa3", name="four"),
    DeploymentEntry(device="h100", offload="none", name="one", price_per_gpu_hour=4.0),
)
WORKLOAD_ARGS = ["--variant", VARIANT, "--frames", "81", "--height", "480", "--width", "832", "--steps", "10"]


@pytest.fixture(scope="module")
def engine_totals() -> dict[str, dict[str, float]]:
    """The engine's own figures of each entry of :data:`ENTRIES`, built by hand."""
    deployments = {
        "desk": build_deployment(VARIANT, accelerator="rtx4090"),
        "four": build_deployment(VARIANT, accelerator="h100", gpus=4, attention_kernel="fa3"),
        "one": build_deployment(VARIANT, accelerator="h100", offload="none"),
    }
    return {
        name: {
            **run_model(d).evaluate_point(WORKLOAD),
            "gpus": d.gpus,
            "power": d.accelerator.board_power_w or 0.0,
            "capacity": d.accelerator.memory_bytes,
        }
        for name, d in deployments.items()
    }


def test_rows_are_the_engines_figures_sorted_by_time(engine_totals: dict[str, dict[str, float]]) -> None:
    """Each row holds the engine's total, step and peak of its deployment, fastest row first."""
    comparison = compare_deployments(SPEC, ENTRIES, price_per_gpu_hour=2.0)
    names = [row.name for row in comparison.rows]
    assert names == sorted(names, key=lambda n: engine_totals[n]["total"])
    assert names[0] == "four" and names[-1] == "desk"
    for row in comparison.rows:
        mine = engine_totals[row.name]
        # the engine's selected outputs and its whole function agree to rounding
        assert row.seconds_per_video == pytest.approx(mine["total"], rel=1e-12)
        assert row.seconds_per_step == pytest.approx(mine["stage.diffusion"] / 10, rel=1e-12)
        assert row.peak_memory_gb == pytest.approx(mine["peak_memory"] / 1e9, rel=1e-12)
        assert row.gpu_seconds_per_video == pytest.approx(mine["gpus"] * mine["total"], rel=1e-12)
    assert comparison.variant == "wan2.1-t2v-1.3b"
    assert comparison.workload == "batch 1, 81 frames at 480×832, 10 steps"


def test_energy_and_cost_are_power_price_gpus_and_time(engine_totals: dict[str, dict[str, float]]) -> None:
    """Energy is board power × GPUs × hours; cost is the entry's price (else the shared one) × GPU-hours."""
    rows = {row.name: row for row in compare_deployments(SPEC, ENTRIES, price_per_gpu_hour=2.0).rows}
    four = engine_totals["four"]
    # 700 W per H100 × 4 GPUs × the run's seconds / 3600 s per hour
    assert rows["four"].energy_wh_per_video == pytest.approx(700 * 4 * four["total"] / 3600, rel=1e-12)
    assert rows["four"].cost_per_video == pytest.approx(2.0 * 4 * four["total"] / 3600, rel=1e-12)
    assert rows["one"].price_per_gpu_hour == 4.0
    assert rows["one"].cost_per_video == pytest.approx(4.0 * engine_totals["one"]["total"] / 3600, rel=1e-12)
    assert rows["desk"].energy_wh_per_video == pytest.approx(450 * engine_totals["desk"]["total"] / 3600)
    unpriced = compare_deployments(SPEC, ENTRIES[:1]).rows[0]
    assert unpriced.cost_per_video is None and unpriced.energy_wh_per_video is not None


def test_figures_are_per_video_for_a_batch() -> None:
    """With two videos per run, time, GPU-seconds, energy and cost per video are the run's halves."""
    batched = WorkloadSpec(variant=VARIANT, frames=81, height=480, width=832, steps=10, batch=2)
    row = compare_deployments(batched, ENTRIES[2:], price_per_gpu_hour=1.0).rows[0]
    run = run_model(build_deployment(VARIANT, accelerator="h100", offload="none"))
    total = run.evaluate_point(Workload(batch=2, frames=81, height=480, width=832, steps=10, text_len=512))
    assert row.seconds_per_video == pytest.approx(total["total"] / 2, rel=1e-12)
    assert row.energy_wh_per_video == pytest.approx(700 * total["total"] / 2 / 3600, rel=1e-12)
    assert row.seconds_per_step == pytest.approx(total["stage.diffusion"] / 10, rel=1e-12)


def test_fit_flag_compares_the_peak_with_the_device_memory() -> None:
    """A 14B transformer held whole at 720p overflows a 24 GB card and fits a 141 GB one."""
    spec = WorkloadSpec(variant="t2v-14b", frames=81, height=720, width=1280, steps=2)
    entries = [
        DeploymentEntry(device="rtx4090", offload="none", name="small"),
        DeploymentEntry(device="h200", offload="none", name="large"),
    ]
    rows = {row.name: row for row in compare_deployments(spec, entries).rows}
    assert not rows["small"].fits and rows["small"].peak_memory_gb > rows["small"].device_memory_gb
    assert rows["large"].fits and rows["large"].peak_memory_gb <= rows["large"].device_memory_gb
    assert rows["small"].device_memory_gb == get_accelerator("rtx4090").memory_bytes / 1e9
    assert " NO " in format_comparison(compare_deployments(spec, entries))


def test_an_entry_builds_the_deployment_of_its_options() -> None:
    """Ulysses and ring give the GPU count and the split; unset fields keep the builder's defaults."""
    entry = parse_entry("device=h100,ulysses=2,ring=2,t5-cpu=yes,guidance=false")
    assert entry == DeploymentEntry(device="h100", ulysses=2, ring=2, t5_cpu=True, guidance=False)
    row = compare_deployments(SPEC, [entry]).rows[0]
    built = build_deployment(
        VARIANT, accelerator="h100", gpus=4, parallelism=Parallelism(2, 2, True), t5_cpu=True, guidance=False
    )
    assert row.gpus == 4 and row.setup == built.flags
    total = run_model(built).evaluate_point(WORKLOAD)["total"]
    assert row.seconds_per_video == pytest.approx(total, rel=1e-12)


def test_the_command_prints_the_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    """The table lists the entries fastest first with the estimates' basis; --json is the same rows."""
    args = [
        "compare-deployments",
        *WORKLOAD_ARGS,
        "--deployment",
        "device=rtx4090,name=desk",
        "--deployment",
        "device=h100,gpus=4,attention_kernel=fa3,name=four",
        "--price-per-gpu-hour",
        "2",
    ]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert table.index(" four ") < table.index(" desk ")
    assert "board power" in table and "no host CPU" in table and "price per GPU-hour" in table
    assert main([*args, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in document["rows"]] == ["four", "desk"]
    assert document["rows"][0]["price_per_gpu_hour"] == 2.0
    assert "no host CPU" in document["energy_basis"]


def test_a_file_gives_the_workload_the_price_and_the_entries(tmp_path: Path) -> None:
    """A TOML file and its JSON twin read alike; the command line overrides the file's workload."""
    toml = tmp_path / "setups.toml"
    toml.write_text(
        'price_per_gpu_hour = 3\n[workload]\nvariant = "t2v-1.3b"\nframes = 81\nheight = 480\n'
        'width = 832\nsteps = 10\n[[deployment]]\ndevice = "h100"\nattention-kernel = "fa3"\n'
        '[[deployment]]\ndevice = "h20"\ngpus = 2\nprice_per_gpu_hour = 1.5\n',
        encoding="utf-8",
    )
    twin = tmp_path / "setups.json"
    twin.write_text(
        json.dumps(
            {
                "price_per_gpu_hour": 3,
                "workload": {"variant": "t2v-1.3b", "frames": 81, "height": 480, "width": 832, "steps": 10},
                "deployment": [
                    {"device": "h100", "attention_kernel": "fa3"},
                    {"device": "h20", "gpus": 2, "price_per_gpu_hour": 1.5},
                ],
            }
        ),
        encoding="utf-8",
    )
    loaded = load_comparison_file(toml)
    assert loaded == load_comparison_file(twin)
    assert loaded.deployment[0].attention_kernel == "fa3" and loaded.price_per_gpu_hour == 3


def test_the_command_reads_a_file_and_a_devices_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A device of a devices file without a published power has no energy estimate, and says so."""
    shipped = json.loads(resources.files("llm_perf_opt.hardware").joinpath("accelerators.json").read_text())
    row = next(d for d in shipped["accelerators"] if d["name"] == "h100-sxm")
    mine = {**row, "name": "lab-gpu", "aliases": [], "board_power_w": None}
    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps({"schema_version": 1, "accelerators": [mine]}), encoding="utf-8")
    setups = tmp_path / "setups.toml"
    setups.write_text('[workload]\nvariant = "t2v-1.3b"\n[[deployment]]\ndevice = "lab-gpu"\n', "utf-8")
    args = ["compare-deployments", "--file", str(setups), *WORKLOAD_ARGS[2:8]]
    assert main([*args, "--steps", "5", "--devices-file", str(devices)]) == 0
    out = capsys.readouterr().out
    assert "50 steps" not in out and "5 steps" in out
    assert "no published board power (no energy estimate): lab-gpu" in out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("device=h100,gpu=2", r"^--deployment 'device=h100,gpu=2': gpu: unknown key; accepted: device, name"),
        ("device=h100,gpus=two", r"gpus: must be an integer written in ASCII digits"),
        ("device=h100,fsdp=maybe", r"fsdp: must be true or false"),
        ("device=h100,price_per_gpu_hour=-1", r"price_per_gpu_hour: must be a number ≥ 0"),
        ("device=h100,gpus=2,gpus=4", r"gpus: given twice"),
        ("device=h100,fa3", r"expected key=value pairs separated by commas, got 'fa3'"),
        ("gpus=2", r"device: required field is missing"),
    ],
)
def test_a_bad_entry_names_its_key(spec: str, message: str) -> None:
    """Each malformed entry is one error naming the entry and the key."""
    with pytest.raises(LlmPerfOptError, match=message):
        parse_entry(spec)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (DeploymentEntry(device="tpu"), r"^deployment 1 \(device=tpu\): accelerator: unknown device 'tpu'"),
        (
            DeploymentEntry(device="a100", attention_kernel="fa3", name="old"),
            r"^deployment 1 \(old\): attention_kernel: fa3 does not run on a100 \(ampere\)",
        ),
        (
            DeploymentEntry(device="h100", ulysses=5),
            r"^deployment 1 \(device=h100\): ulysses: 12 attention heads cannot be split 5 ways",
        ),
        (DeploymentEntry(device="h100", stack="no-such-stack"), r"^deployment 1 \(device=h100\): stack: "),
        (
            DeploymentEntry(device="h100", efficiencies="/no/such.json"),
            r"^deployment 1 \(device=h100\): efficiencies: path: cannot read '/no/such.json'",
        ),
    ],
)
def test_an_entry_that_does_not_build_names_itself(entry: DeploymentEntry, message: str) -> None:
    """The builder's error is prefixed by the entry's number and name."""
    with pytest.raises(LlmPerfOptError, match=message):
        compare_deployments(SPEC, [entry])


def test_bad_workloads_and_files_are_clear_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing workload field, a missing, malformed or unknown-keyed file and no entries: one line each."""
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("workload = [\n", encoding="utf-8")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{", encoding="utf-8")
    foreign = tmp_path / "foreign.toml"
    foreign.write_text('[[deployment]]\ndevice = "h100"\ncolour = "red"\n', encoding="utf-8")
    cases = [
        (["--deployment", "device=h100"], "workload: variant: missing; give --variant"),
        ([*WORKLOAD_ARGS[:6], "--deployment", "device=h100"], "workload: width: missing"),
        ([*WORKLOAD_ARGS], "deployment: expected at least one entry"),
        ([*WORKLOAD_ARGS, "--file", str(tmp_path / "none.toml")], "--file: cannot read"),
        ([*WORKLOAD_ARGS, "--file", str(bad_toml)], "bad.toml: not valid TOML"),
        ([*WORKLOAD_ARGS, "--file", str(bad_json)], "bad.json: not valid JSON"),
        ([*WORKLOAD_ARGS, "--file", str(foreign)], "deployment.0.colour: unknown field; accepted: device"),
        ([*WORKLOAD_ARGS, "--price-per-gpu-hour", "x", "--deployment", "device=h100"], "must be a number"),
    ]
    for args, message in cases:
        assert main(["compare-deployments", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (args, err)
    with pytest.raises(LlmPerfOptError, match=r"^workload: num_frames: must be an integer in 1…"):
        compare_deployments(WorkloadSpec(variant=VARIANT, frames=1_000_000, height=480, width=832), ENTRIES)


def test_a_stack_entry_is_the_builders_stack_deployment() -> None:
    """An entry naming a stack gets the engine's figures of the builder's deployment of that stack."""
    entries = [
        DeploymentEntry(device="h100", stack="diffusers", name="stock"),
        DeploymentEntry(device="h100", stack="lightx2v", name="tuned"),
    ]
    rows = compare_deployments(SPEC, entries).rows
    expected = {
        name: run_model(build_deployment(VARIANT, accelerator="h100", stack=stack)).evaluate_point(WORKLOAD)[
            "total"
        ]
        for name, stack in (("stock", "diffusers"), ("tuned", "lightx2v"))
    }
    assert [row.name for row in rows] == sorted(expected, key=expected.__getitem__)
    for row in rows:
        assert row.seconds_per_video == pytest.approx(expected[row.name], rel=1e-12)
