"""The ``compare-deployments`` command: one workload on several deployments, sorted by time.

``llm-perf-opt compare-deployments --variant t2v-14b --frames 81 --height 720 --width 1280
--deployment "device=h100,gpus=8,attention_kernel=fa3" --deployment "device=h20,gpus=8"
[--file setups.toml] [--price-per-gpu-hour 2.5] [--devices-file devices.json] [--json]`` builds
every entry through :func:`llm_perf_opt.models.build_deployment`, evaluates it with the one compiled engine
(:func:`llm_perf_opt.deployment.engine.run_model`) and prints one row per entry, fastest first: time
per video and per sampling step, peak memory per device and whether it fits, GPU-seconds, and the
estimates of energy and cost per video where their inputs are known.

An entry is ``key=value`` pairs (command line) or a table (``[[deployment]]`` in TOML, a
``"deployment"`` list in JSON); its keys are the fields of :class:`DeploymentEntry`. The file may
also hold the ``[workload]`` (:class:`WorkloadSpec`) and a ``price_per_gpu_hour`` for every entry;
command-line values take precedence over the file's, an entry's own price over both.

Estimates, with their basis: **energy** = the device's ``board_power_w`` (the vendor's maximum
board or module power) × GPUs × seconds per video: an upper bound for the accelerators alone, no
host CPU, memory, network or cooling. **Cost** = price per GPU-hour × GPUs × hours per video: every
GPU is held for the whole run, stages that leave some idle included.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from attrs import field, fields, frozen

from llm_perf_opt.contracts.converter import structure, to_json
from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.deployment.value import Deployment, Parallelism
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.files import parse_json, read_text
from llm_perf_opt.hardware.accelerators import ACCELERATORS, Accelerator, get_accelerator, load_accelerators
from llm_perf_opt.hardware.efficiency import load_efficiencies
from llm_perf_opt.models import build_deployment
from llm_perf_opt.parsing import parse_int
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.validation import FieldError, flag, integer, optional_integer, optional_text, text
from llm_perf_opt.wan2_1.evaluate import resolve_workload
from llm_perf_opt.wan2_1.geometry import PADDED_TEXT_LEN
from llm_perf_opt.wan2_1.variants import get_variant
from llm_perf_opt.wan2_1.workloads import default_steps

__all__ = [
    "ComparisonFile",
    "DeploymentComparison",
    "DeploymentEntry",
    "DeploymentFigures",
    "WorkloadSpec",
    "compare_deployments",
    "format_comparison",
    "handle_compare_deployments",
    "load_comparison_file",
    "parse_entry",
    "register",
]

ENERGY_BASIS: Final = (
    "energy = board power (the vendor's maximum board or module power) × GPUs × time: an upper "
    "bound for the accelerators alone; no host CPU, memory, network or cooling"
)
COST_BASIS: Final = "cost = price per GPU-hour × GPUs × hours per video: every GPU is held for the whole run"
_TRUE: Final = ("true", "yes", "on", "1")
_FALSE: Final = ("false", "no", "off", "0")


def _optional_price(_: object, attribute: Any, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise FieldError((attribute.name,), f"must be a number ≥ 0 (price per GPU-hour), got {value!r}")


def _optional_flag(instance: object, attribute: Any, value: bool | None) -> None:
    if value is not None:
        flag()(instance, attribute, value)


@frozen(kw_only=True)
class DeploymentEntry:
    """One deployment to compare, as the user wrote it; unset fields take the builder's defaults.

    Attributes:
        device: the accelerator (a name or alias of ``llm-perf-opt devices`` or of ``--devices-file``).
        name: the row's label (default: device, GPUs, kernel and precision).
        gpus: devices in the run (default ``ulysses × ring``, else 1).
        ulysses, ring, fsdp: the split of the transformer (default: the family's recipe).
        offload, t5_cpu, t5_fsdp: where weights wait and where the text encoder runs.
        attention_kernel, precision: the fused attention kernel and the tensor precision.
        implementation: the implementation profile (``official``, ``diffusers``).
        guidance: classifier-free guidance (two transformer forwards per step).
        stack: an inference-stack preset, passed through to the builder.
        efficiencies: an efficiency-factor override file (JSON) for this entry.
        price_per_gpu_hour: the price of one GPU-hour, for the cost estimate.
    """

    device: str = field(validator=text())
    name: str | None = field(default=None, validator=optional_text())
    gpus: int | None = field(default=None, validator=optional_integer(1))
    ulysses: int | None = field(default=None, validator=optional_integer(1))
    ring: int | None = field(default=None, validator=optional_integer(1))
    fsdp: bool | None = field(default=None, validator=_optional_flag)
    offload: str | None = field(default=None, validator=optional_text())
    t5_cpu: bool | None = field(default=None, validator=_optional_flag)
    t5_fsdp: bool | None = field(default=None, validator=_optional_flag)
    attention_kernel: str | None = field(default=None, validator=optional_text())
    precision: str | None = field(default=None, validator=optional_text())
    implementation: str | None = field(default=None, validator=optional_text())
    guidance: bool | None = field(default=None, validator=_optional_flag)
    stack: str | None = field(default=None, validator=optional_text())
    efficiencies: str | None = field(default=None, validator=optional_text())
    price_per_gpu_hour: float | None = field(default=None, validator=_optional_price)


@frozen(kw_only=True)
class WorkloadSpec:
    """The one workload every entry runs.

    Attributes:
        variant: model_variant or model_id (``t2v-14b``).
        frames, height, width: the video.
        steps: sampling steps (default: the task's).
        batch: videos per run (default 1).
    """

    variant: str = field(validator=text())
    frames: int = field(validator=integer(1))
    height: int = field(validator=integer(1))
    width: int = field(validator=integer(1))
    steps: int | None = field(default=None, validator=optional_integer(1))
    batch: int = field(default=1, validator=integer(1))


@frozen(kw_only=True)
class _PartialWorkload:
    """A file's ``[workload]`` table: every field optional (the command line may give the rest)."""

    variant: str | None = field(default=None, validator=optional_text())
    frames: int | None = field(default=None, validator=optional_integer(1))
    height: int | None = field(default=None, validator=optional_integer(1))
    width: int | None = field(default=None, validator=optional_integer(1))
    steps: int | None = field(default=None, validator=optional_integer(1))
    batch: int | None = field(default=None, validator=optional_integer(1))


@frozen(kw_only=True)
class ComparisonFile:
    """The schema of a ``--file`` (TOML or JSON).

    Attributes:
        workload: the workload (fields the command line does not give).
        price_per_gpu_hour: the price for entries without their own.
        deployment: the entries, in order.
    """

    workload: _PartialWorkload = field(factory=_PartialWorkload)
    price_per_gpu_hour: float | None = field(default=None, validator=_optional_price)
    deployment: tuple[DeploymentEntry, ...] = ()


@frozen(kw_only=True)
class DeploymentFigures:
    """One entry's figures for the workload (per video: a run's figures divided by its batch).

    Attributes:
        name: the row's label.
        device: the accelerator's name.
        gpus: devices in the run.
        setup: the setup in the words of the family's command line.
        seconds_per_video: the whole generation's time per video.
        seconds_per_step: the sampling loop's time per step (all transformer forwards of a step).
        peak_memory_gb: peak memory per device (10⁹ bytes).
        device_memory_gb: the device's memory (10⁹ bytes).
        fits: the peak fits the device's memory.
        gpu_seconds_per_video: GPUs × seconds per video.
        board_power_w: the device's board power, if published.
        energy_wh_per_video: estimated energy (see :data:`ENERGY_BASIS`), where the power is known.
        price_per_gpu_hour: the price the cost is based on, if given.
        cost_per_video: estimated cost (see :data:`COST_BASIS`), where a price is given.
    """

    name: str
    device: str
    gpus: int
    setup: str
    seconds_per_video: float
    seconds_per_step: float
    peak_memory_gb: float
    device_memory_gb: float
    fits: bool
    gpu_seconds_per_video: float
    board_power_w: float | None
    energy_wh_per_video: float | None
    price_per_gpu_hour: float | None
    cost_per_video: float | None


@frozen(kw_only=True)
class DeploymentComparison:
    """Every entry's figures, fastest first, and the basis of the estimates.

    Attributes:
        variant: the variant's model id.
        workload: the workload in words.
        rows: one per entry, sorted by time per video (then name).
        notes: what the pipeline makes of the workload (a frame count that is not ``4k + 1`` …).
        energy_basis, cost_basis: how the estimates are made.
    """

    variant: str
    workload: str
    rows: tuple[DeploymentFigures, ...]
    notes: tuple[str, ...] = ()
    energy_basis: str = ENERGY_BASIS
    cost_basis: str = COST_BASIS


_ENTRY_TYPES: Final = {
    "gpus": int,
    "ulysses": int,
    "ring": int,
    "fsdp": bool,
    "t5_cpu": bool,
    "t5_fsdp": bool,
    "guidance": bool,
    "price_per_gpu_hour": float,
}
"""The fields of :class:`DeploymentEntry` that are not text, by their type."""
_PASSED_AS_GIVEN: Final = (
    "offload",
    "t5_cpu",
    "t5_fsdp",
    "attention_kernel",
    "precision",
    "implementation",
    "guidance",
)
"""The fields of :class:`DeploymentEntry` that are the builder's keywords of the same name."""


def _entry_keys() -> tuple[str, ...]:
    return tuple(a.name for a in fields(DeploymentEntry))


def _typed(where: str, key: str, value: str) -> object:
    kind = _ENTRY_TYPES.get(key, str)
    if kind is int:
        return parse_int(f"{where}: {key}", value)
    if kind is bool:
        lowered = value.lower()
        if lowered in _TRUE or lowered in _FALSE:
            return lowered in _TRUE
        raise LlmPerfOptError(
            f"{where}: {key}: must be true or false ({'/'.join(_TRUE)} or {'/'.join(_FALSE)}), got {value!r}"
        )
    if kind is float:
        try:
            return float(value)
        except ValueError:
            raise LlmPerfOptError(f"{where}: {key}: must be a number, got {value!r}") from None
    return value


def parse_entry(spec: str, *, where: str = "--deployment") -> DeploymentEntry:
    """One entry from ``key=value,key=value`` (keys as :class:`DeploymentEntry`'s fields, ``-`` or
    ``_``); an unknown key, a missing ``=``, a repeated key or a bad value names ``where`` and the key."""
    where = f"{where} {spec!r}"
    values: dict[str, object] = {}
    for item in spec.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise LlmPerfOptError(f"{where}: expected key=value pairs separated by commas, got {item!r}")
        if key not in _entry_keys():
            raise LlmPerfOptError(f"{where}: {key}: unknown key; accepted: {', '.join(_entry_keys())}")
        if key in values:
            raise LlmPerfOptError(f"{where}: {key}: given twice")
        values[key] = _typed(where, key, value.strip())
    return structure(values, DeploymentEntry, where=where)


def _hyphens_to_underscores(data: object) -> object:
    """Keys spelled ``attention-kernel`` read as ``attention_kernel``, at every level."""
    if isinstance(data, Mapping):
        return {str(k).replace("-", "_"): _hyphens_to_underscores(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_hyphens_to_underscores(v) for v in data]
    return data


def load_comparison_file(path: str | Path) -> ComparisonFile:
    """A ``--file``: TOML (``.toml``) or JSON (any other suffix); a missing, unreadable or malformed
    file, or a bad field, is one error naming the file and the field."""
    path = Path(path)
    content = read_text(path, field="--file")
    if path.suffix.lower() == ".toml":
        try:
            data: object = tomllib.loads(content)
        except tomllib.TOMLDecodeError as error:
            raise LlmPerfOptError(f"--file: {path}: not valid TOML: {error}") from None
    else:
        data = parse_json(content, where=f"--file {path}")
    return structure(_hyphens_to_underscores(data), ComparisonFile, where=str(path))


def _label(entry: DeploymentEntry, deployment: Deployment) -> str:
    if entry.name is not None:
        return entry.name
    stack = f" {entry.stack}" if entry.stack is not None else ""
    return (
        f"{deployment.accelerator.name} ×{deployment.gpus}{stack} {deployment.attention_kernel} "
        f"{deployment.precision}"
    )


def _options(entry: DeploymentEntry, catalog: Mapping[str, Accelerator]) -> dict[str, Any]:
    """The builder's keywords for the fields the entry sets (the others take the builder's defaults)."""
    options: dict[str, Any] = {"accelerator": get_accelerator(entry.device, catalog)}
    split = (entry.ulysses, entry.ring, entry.fsdp)
    gpus = entry.gpus
    if gpus is None and (entry.ulysses is not None or entry.ring is not None):
        gpus = (entry.ulysses or 1) * (entry.ring or 1)
    if gpus is not None:
        options["gpus"] = gpus
    if any(value is not None for value in split):
        count = gpus if gpus is not None else 1
        options["parallelism"] = Parallelism(
            ulysses=entry.ulysses or 1,
            ring=entry.ring or 1,
            fsdp=entry.fsdp if entry.fsdp is not None else count > 1,
        )
    for key in _PASSED_AS_GIVEN:
        value = getattr(entry, key)
        if value is not None:
            options[key] = value
    if entry.efficiencies is not None:
        try:
            options["efficiencies"] = load_efficiencies(entry.efficiencies)
        except LlmPerfOptError as error:
            raise LlmPerfOptError(f"efficiencies: {error}") from None
    if entry.stack is not None:
        options["stack"] = entry.stack
    return options


def _build(variant: str, entry: DeploymentEntry, catalog: Mapping[str, Accelerator]) -> Deployment:
    """The entry's deployment, built by the family's builder (a ``stack`` preset fills what the
    entry leaves out)."""
    return build_deployment(variant, **_options(entry, catalog))


def _figures(
    entry: DeploymentEntry, deployment: Deployment, workload: Workload, price: float | None
) -> DeploymentFigures:
    values = run_model(deployment).evaluate(workload, names=("total", "stage.diffusion", "peak_memory"))
    batch, steps = int(workload.batch), int(workload.steps)
    per_video = float(values["total"]) / batch
    peak = float(values["peak_memory"])
    device = deployment.accelerator
    power = device.board_power_w
    price = entry.price_per_gpu_hour if entry.price_per_gpu_hour is not None else price
    gpu_seconds = deployment.gpus * per_video
    return DeploymentFigures(
        name=_label(entry, deployment),
        device=device.name,
        gpus=deployment.gpus,
        setup=deployment.flags,
        seconds_per_video=per_video,
        seconds_per_step=float(values["stage.diffusion"]) / steps,
        peak_memory_gb=peak / 1e9,
        device_memory_gb=device.memory_bytes / 1e9,
        fits=peak <= device.memory_bytes,
        gpu_seconds_per_video=gpu_seconds,
        board_power_w=power,
        energy_wh_per_video=None if power is None else power * gpu_seconds / 3600,
        price_per_gpu_hour=price,
        cost_per_video=None if price is None else price * gpu_seconds / 3600,
    )


def compare_deployments(
    spec: WorkloadSpec,
    entries: Sequence[DeploymentEntry],
    *,
    price_per_gpu_hour: float | None = None,
    catalog: Mapping[str, Accelerator] = ACCELERATORS,
) -> DeploymentComparison:
    """Every entry's figures for ``spec``, fastest first; ``price_per_gpu_hour`` is the price of
    entries without their own, ``catalog`` the devices their names refer to. An entry that does not
    build is an error naming it and the field."""
    if not entries:
        raise LlmPerfOptError("deployment: expected at least one entry (--deployment or --file), got none")
    try:
        variant = get_variant(spec.variant)
        steps = spec.steps if spec.steps is not None else default_steps(variant)
        workload, notes = resolve_workload(
            variant,
            batch=spec.batch,
            frames=spec.frames,
            height=spec.height,
            width=spec.width,
            steps=steps,
            text_len=PADDED_TEXT_LEN,
        )
    except LlmPerfOptError as error:
        raise LlmPerfOptError(f"workload: {error}") from None
    rows = []
    for index, entry in enumerate(entries, 1):
        where = f"deployment {index}" + (f" ({entry.name})" if entry.name else f" (device={entry.device})")
        try:
            deployment = _build(spec.variant, entry, catalog)
        except LlmPerfOptError as error:
            raise LlmPerfOptError(f"{where}: {error}") from None
        rows.append(_figures(entry, deployment, workload, price_per_gpu_hour))
    rows.sort(key=lambda row: (row.seconds_per_video, row.name))
    shown = f"batch {spec.batch}, {spec.frames} frames at {spec.height}×{spec.width}, {steps} steps"
    return DeploymentComparison(
        variant=variant.model_id, workload=shown, rows=tuple(rows), notes=tuple(notes)
    )


def _optional(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def format_comparison(comparison: DeploymentComparison) -> str:
    """The comparison as an aligned plain-text table, fastest first, with the estimates' basis."""
    name_width = max(len("deployment"), *(len(row.name) for row in comparison.rows))
    header = (
        f"{'#':>2}  {'deployment':<{name_width}}  {'s/video':>9}  {'s/step':>8}  "
        f"{'peak GB/device':>18}  {'fits':<4}  {'GPU·s':>9}  {'energy Wh*':>10}  {'cost*':>8}  setup"
    )
    lines = [f"{comparison.variant}: {comparison.workload}", header, "-" * len(header)]
    for rank, row in enumerate(comparison.rows, 1):
        memory = f"{row.peak_memory_gb:.1f} / {row.device_memory_gb:.1f}"
        lines.append(
            f"{rank:>2}  {row.name:<{name_width}}  {row.seconds_per_video:>9,.1f}  "
            f"{row.seconds_per_step:>8.2f}  {memory:>18}  {'yes' if row.fits else 'NO':<4}  "
            f"{row.gpu_seconds_per_video:>9,.0f}  {_optional(row.energy_wh_per_video, 1):>10}  "
            f"{_optional(row.cost_per_video, 3):>8}  {row.setup}"
        )
    lines.append(f"* estimates. {comparison.energy_basis}.")
    lines.append(f"  {comparison.cost_basis}.")
    missing_power = sorted({row.device for row in comparison.rows if row.board_power_w is None})
    if missing_power:
        lines.append(f"  no published board power (no energy estimate): {', '.join(missing_power)}")
    if all(row.price_per_gpu_hour is None for row in comparison.rows):
        lines.append(
            "  no price given (no cost estimate): --price-per-gpu-hour, or price_per_gpu_hour in an entry"
        )
    lines.extend(f"note: {note}" for note in comparison.notes)
    return "\n".join(lines)


def _workload(args: argparse.Namespace, given: _PartialWorkload) -> WorkloadSpec:
    """The workload from the command line, the file's ``[workload]`` filling what it leaves out."""
    values = {
        name: getattr(args, name) if getattr(args, name) is not None else getattr(given, name)
        for name in ("variant", "frames", "height", "width", "steps", "batch")
    }
    missing = [name for name in ("variant", "frames", "height", "width") if values[name] is None]
    if missing:
        raise LlmPerfOptError(
            f"workload: {missing[0]}: missing; give --{missing[0]} or {missing[0]} in the file's [workload]"
        )
    if values["batch"] is None:
        values["batch"] = 1
    return WorkloadSpec(**values)


def handle_compare_deployments(args: argparse.Namespace) -> int:
    """Run the command: read the entries, compare, print the table (or JSON with ``--json``)."""
    loaded = load_comparison_file(args.file) if args.file is not None else ComparisonFile()
    entries = [
        *loaded.deployment,
        *(parse_entry(spec, where=f"--deployment {i}") for i, spec in enumerate(args.deployment, 1)),
    ]
    price = args.price_per_gpu_hour if args.price_per_gpu_hour is not None else loaded.price_per_gpu_hour
    catalog = ACCELERATORS if args.devices_file is None else load_accelerators(args.devices_file)
    comparison = compare_deployments(
        _workload(args, loaded.workload), entries, price_per_gpu_hour=price, catalog=catalog
    )
    if args.json:
        print(to_json(comparison))
    else:
        print(format_comparison(comparison))
    sys.stdout.flush()
    return 0


def _price(text_value: str) -> float:
    try:
        value = float(text_value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0, got {text_value!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number ≥ 0, got {text_value!r}")
    return value


def _count(text_value: str) -> int:
    try:
        return parse_int("value", text_value)
    except LlmPerfOptError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("value: ")) from None


def register(subparsers: Any) -> None:
    """Add ``compare-deployments`` to a command line's sub-parsers."""
    keys = ", ".join(_entry_keys())
    command = subparsers.add_parser(
        "compare-deployments",
        help="one workload on several deployments, fastest first: time, memory, GPU-seconds, cost",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    command.add_argument("--variant", help="model_variant or model_id, e.g. t2v-14b")
    command.add_argument("--frames", type=_count, help="video frames")
    command.add_argument("--height", type=_count, help="video height in pixels")
    command.add_argument("--width", type=_count, help="video width in pixels")
    command.add_argument("--steps", type=_count, help="sampling steps (default: the task's)")
    command.add_argument("--batch", type=_count, help="videos per run (default 1)")
    command.add_argument(
        "--deployment",
        action="append",
        default=[],
        metavar="KEY=VALUE,...",
        help=f"one deployment (repeatable), keys: {keys}",
    )
    command.add_argument(
        "--file", type=Path, help="TOML or JSON file with [workload], price_per_gpu_hour and [[deployment]]"
    )
    command.add_argument(
        "--price-per-gpu-hour", type=_price, help="price of one GPU-hour for the cost estimate"
    )
    command.add_argument(
        "--devices-file", type=Path, help="accelerator override file (JSON): devices the table lacks"
    )
    command.add_argument("--json", action="store_true", help="print the comparison as JSON")
    command.set_defaults(func=handle_compare_deployments)
