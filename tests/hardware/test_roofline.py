"""The roofline time model: op classes, precisions, hand-computed cases, consistency over the tree."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import get_accelerator
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, EfficiencyTable
from llm_perf_opt.hardware.roofline import (
    DEFAULT_POLICY,
    OpClass,
    PrecisionPolicy,
    TimeModel,
    compute_precision,
    host_transfer_seconds,
    op_class,
    roofline_terms,
    terms_seconds,
    time_model,
)
from llm_perf_opt.symbolic.dtypes import BF16, FP8, FP32
from llm_perf_opt.symbolic.module import Module, ModuleTree, build_tree
from llm_perf_opt.symbolic.primitives import OpCall, add, convolution, mm, scaled_dot_product_attention
from llm_perf_opt.symbolic.symbols import B, F, H, W, Workload
from llm_perf_opt.wan2_1.evaluate import dit_tree
from llm_perf_opt.wan2_1.implementation import DIFFUSERS, OFFICIAL
from llm_perf_opt.wan2_1.variants import get_variant

ONE = Workload(batch=1, frames=81, height=480, width=832, steps=1, text_len=512)

# Round factors so that the hand arithmetic below reads simply.
HALF = EFFICIENCIES.with_values(
    {
        (f"family:{family}", key): 0.5
        for family in ("hopper", "ada", "ampere")
        for key in ("matmul", "convolution", "memory_tensor", "memory_elementwise", "vector", "attention.fa2")
    }
)


def _toy(*ops: OpCall) -> ModuleTree:
    return build_tree(Module(name="toy", class_name="Toy", stage="other", ops=ops), "toy")


def _seconds(
    table: EfficiencyTable, device: str, *ops: OpCall, policy: PrecisionPolicy = DEFAULT_POLICY
) -> float:
    model = time_model(_toy(*ops), get_accelerator(device), table, policy=policy)
    return model.evaluate_point(ONE)["toy"]


@pytest.mark.parametrize(
    ("primitive", "expected"),
    [
        ("mm", OpClass.MATMUL),
        ("addmm", OpClass.MATMUL),
        ("bmm", OpClass.MATMUL),
        ("baddbmm", OpClass.MATMUL),
        ("convolution", OpClass.CONVOLUTION),
        ("_scaled_dot_product_flash_attention", OpClass.ATTENTION),
        ("_scaled_dot_product_efficient_attention", OpClass.ATTENTION),
        ("native_layer_norm", OpClass.ELEMENTWISE),
        ("_fused_rms_norm", OpClass.ELEMENTWISE),
        ("gelu_tanh", OpClass.ELEMENTWISE),
        ("rope", OpClass.ELEMENTWISE),
        ("_to_copy", OpClass.ELEMENTWISE),
        ("embedding", OpClass.ELEMENTWISE),
    ],
)
def test_op_classes(primitive: str, expected: OpClass) -> None:
    """Matrix products, convolutions and fused attention have their class; the rest is element-wise."""
    assert op_class(primitive) is expected


def test_unknown_primitive_is_an_error() -> None:
    """A key that is not in the primitive registry is rejected, listing the registered ones."""
    with pytest.raises(
        LlmPerfOptError, match=r"primitive: unknown primitive 'matmul'; registered: mm, addmm"
    ):
        op_class("matmul")


@pytest.mark.parametrize(
    ("kind_class", "dtype", "policy", "expected"),
    [
        (OpClass.MATMUL, "bf16", PrecisionPolicy(), "bf16"),
        (OpClass.MATMUL, "fp8", PrecisionPolicy(), "fp8"),
        # torch.backends.cuda.matmul.allow_tf32 is False by default: fp32 GEMMs on CUDA cores
        (OpClass.MATMUL, "fp32", PrecisionPolicy(), "fp32"),
        (OpClass.MATMUL, "fp32", PrecisionPolicy(fp32_matmul="tf32"), "tf32"),
        # torch.backends.cudnn.allow_tf32 is True by default: fp32 convolutions on TF32 tensor cores
        (OpClass.CONVOLUTION, "fp32", PrecisionPolicy(), "tf32"),
        (OpClass.CONVOLUTION, "fp32", PrecisionPolicy(fp32_convolution="fp32"), "fp32"),
        (OpClass.ATTENTION, "fp32", PrecisionPolicy(), "fp32"),
        (OpClass.MATMUL, "fp64", PrecisionPolicy(), "fp32"),
        (OpClass.ELEMENTWISE, "bf16", PrecisionPolicy(), "fp32"),
        (OpClass.ELEMENTWISE, "fp64", PrecisionPolicy(), "fp32"),
    ],
)
def test_precision_policy(kind_class: OpClass, dtype: str, policy: PrecisionPolicy, expected: str) -> None:
    """Each op kind's dtype maps to the peak it runs at, following PyTorch's TF32 defaults."""
    assert compute_precision(kind_class, dtype, policy) == expected


def test_precision_errors() -> None:
    """A tensor op without a float dtype and an unknown fp32 mode are rejected."""
    with pytest.raises(LlmPerfOptError, match=r"dtype: a matmul op computes at 'int64'; expected one of"):
        compute_precision(OpClass.MATMUL, "int64")
    with pytest.raises(LlmPerfOptError, match=r"fp32_matmul: must be one of fp32, tf32, got 'fp16'"):
        PrecisionPolicy(fp32_matmul="fp16")


def test_compute_bound_gemm_on_h100() -> None:
    """A square bf16 GEMM is compute-bound: flops / (989 TFLOP/s · 0.5)."""
    # 2·4096³ = 137,438,953,472 FLOP / 494.5e12 FLOP/s = 2.779352e-4 s
    # bytes 3·4096²·2 = 100,663,296 / (3.35e12 · 0.5) = 6.0097e-5 s, smaller
    seconds = _seconds(HALF, "h100", mm(4096 * B, 4096, 4096, dtype=BF16))
    assert seconds == pytest.approx(137_438_953_472 / 494.5e12, rel=1e-12)


def test_memory_bound_gemv_on_h100() -> None:
    """A one-row product is bound by reading its weight: bytes / (3.35 TB/s · 0.5)."""
    # bytes (4096 + 4096² + 4096)·2 = 33,570,816 / 1.675e12 = 2.00423e-5 s
    # flops 2·4096² / 494.5e12 = 6.8e-8 s, smaller
    seconds = _seconds(HALF, "h100", mm(B, 4096, 4096, dtype=BF16))
    assert seconds == pytest.approx(33_570_816 / 1.675e12, rel=1e-12)


def test_elementwise_is_memory_bound() -> None:
    """An fp32 add of 2²⁴ elements: reads 2 and writes 1 tensor of 4 bytes per element."""
    # bytes (2 + 1)·4·2²⁴ = 201,326,592 / 1.675e12 = 1.20195e-4 s; vector flops 2²⁴ / (67e12·0.5) = 5e-7 s
    seconds = _seconds(HALF, "h100", add(2**24 * B, dtype=FP32))
    assert seconds == pytest.approx(201_326_592 / 1.675e12, rel=1e-12)


def test_fp32_matmul_runs_on_cuda_cores_unless_tf32_is_allowed() -> None:
    """fp32 GEMMs use the 67 TFLOP/s fp32 rate by default and the 495 TFLOP/s TF32 rate when allowed."""
    op = mm(1024 * B, 1024, 1024, dtype=FP32)
    # 2·1024³ = 2,147,483,648 FLOP / (67e12·0.5) = 6.41040e-5 s
    assert _seconds(HALF, "h100", op) == pytest.approx(2_147_483_648 / 33.5e12, rel=1e-12)
    # TF32: 2,147,483,648 / (495e12·0.5) = 8.6767e-6 s; bytes 3·1024²·4 / 1.675e12 = 7.51e-6 s, smaller
    tf32 = _seconds(HALF, "h100", op, policy=PrecisionPolicy(fp32_matmul="tf32"))
    assert tf32 == pytest.approx(2_147_483_648 / 247.5e12, rel=1e-12)


def test_fp32_convolution_uses_tf32() -> None:
    """An fp32 convolution runs at the TF32 rate by default."""
    conv = convolution(
        B, 256, 256, kernel=(3, 3, 3), out_spatial=(16, 64, 64), in_spatial=(18, 66, 66), dtype=FP32
    )
    # 2·256·256·27·(16·64·64) = 231,928,233,984 FLOP / (495e12·0.5) = 9.37084e-4 s
    # bytes (256·18·66·66 + 256·256·27 + 256·65536)·4 = 154,476,544 / 1.675e12 = 9.22e-5 s, smaller
    assert _seconds(HALF, "h100", conv) == pytest.approx(231_928_233_984 / 247.5e12, rel=1e-12)


def test_attention_on_rtx4090_uses_the_fp32_accumulate_peak_and_its_device_factor() -> None:
    """FA2 on an RTX 4090 runs at 0.99 of 165.2 TFLOP/s (its own kernel measurement)."""
    core = scaled_dot_product_attention(B, 8, 4096, 4096, 128, dtype=BF16)
    model = time_model(_toy(core), get_accelerator("rtx4090"), attention_kernel="fa2")
    # 4·8·4096·4096·128 = 68,719,476,736 FLOP / (165.2e12·0.99) = 4.20187e-4 s
    assert model.evaluate_point(ONE)["toy"] == pytest.approx(68_719_476_736 / (165.2e12 * 0.99), rel=1e-12)


def test_host_transfer() -> None:
    """Offload copies run at the host link per direction times its factor."""
    # 28.6e9 bytes / (32e9 B/s · 0.2) = 4.46875 s on PCIe Gen4 x16 at the RTX 4090's fitted factor
    assert host_transfer_seconds(28.6e9, get_accelerator("4090")) == pytest.approx(4.46875)
    # 28.6e9 bytes / (64e9 B/s · 0.8) = 0.55859375 s on an H100's PCIe Gen5 x16
    assert host_transfer_seconds(28.6e9, get_accelerator("h100")) == pytest.approx(0.55859375)


def test_unsupported_kernel_and_precision_are_errors() -> None:
    """FA3 on Ada, an unknown kernel, and an fp8 op on an A100 are rejected with what is supported."""
    tree = dit_tree(get_variant("t2v-1.3b"), DIFFUSERS)
    with pytest.raises(
        LlmPerfOptError, match=r"'fa3' has no efficiency on rtx4090 \(ada\); kernels for it: sdpa, fa2"
    ):
        time_model(tree, get_accelerator("rtx4090"), attention_kernel="fa3")
    with pytest.raises(
        LlmPerfOptError, match=r"attention_kernel: unknown kernel 'fa9'; accepted: sdpa, fa2, fa3"
    ):
        time_model(tree, get_accelerator("h100"), attention_kernel="fa9")
    with pytest.raises(
        LlmPerfOptError, match=r"precision: a100 has no 'fp8' rate; supported: fp32, tf32, bf16, fp16"
    ):
        time_model(_toy(mm(B, 64, 64, dtype=FP8)), get_accelerator("a100"))


@pytest.fixture(scope="module")
def dit_model() -> TimeModel:
    return time_model(dit_tree(get_variant("t2v-14b"), OFFICIAL), get_accelerator("h100"))


def test_parent_time_is_own_plus_children(dit_model: TimeModel) -> None:
    """Over a grid of workloads, every module's time is its own ops' time plus its children's."""
    grid = Workload(
        batch=np.array([1, 2])[:, None, None],
        frames=np.array([1, 17, 81])[None, :, None],
        height=np.array([480, 720])[None, None, :],
        width=np.array([832, 1280])[None, None, :],
        steps=1,
        text_len=512,
    )
    times = dit_model.evaluate(grid)
    own = {
        node_id: expr for node_id, expr in dit_model.own_seconds.items() if dit_model.tree[node_id].children
    }
    own_values = dict(zip(own, _evaluate(list(own.values()), grid), strict=True))
    for node in dit_model.tree:
        if node.children:
            children = sum(times[c] for c in node.children)
            np.testing.assert_allclose(times[node.id], own_values[node.id] + children, rtol=1e-12)


def _evaluate(expressions: list[sympy.Expr], workload: Workload) -> list[npt.NDArray[np.float64]]:
    from llm_perf_opt.hardware.roofline import compile_seconds

    shape = np.broadcast_shapes(*(np.shape(v) for v in workload.values()))
    outputs = compile_seconds(tuple(sympy.sympify(e) for e in expressions))(*workload.values())
    return [np.broadcast_to(np.asarray(o, dtype=float), shape) for o in outputs]


def test_numeric_terms_equal_the_symbolic_model(dit_model: TimeModel) -> None:
    """The numeric roofline terms the fit uses give the same root time as the compiled expressions."""
    terms = roofline_terms(dit_model.tree, dit_model.accelerator, ONE)
    assert terms_seconds(terms, dit_model.efficiency) == pytest.approx(
        dit_model.evaluate_point(ONE)["diffusion"], rel=1e-12
    )


def test_the_time_is_symbolic_in_the_video_size(dit_model: TimeModel) -> None:
    """The root time is an expression in frames, height and width, with the roofline's max."""
    expr = dit_model.root_seconds
    assert {F, H, W, B} <= expr.free_symbols
    assert expr.has(sympy.Max)
    assert "numpy.maximum" in dit_model.source


@settings(max_examples=25, deadline=None)
@given(
    frames=st.integers(1, 40).map(lambda k: 4 * k + 1),
    height=st.integers(8, 60).map(lambda k: 16 * k),
    width=st.integers(8, 90).map(lambda k: 16 * k),
)
def test_time_is_positive_finite_and_grows_with_frames(
    dit_model: TimeModel, frames: int, height: int, width: int
) -> None:
    """Times are finite and positive, a grid agrees with single points, and more frames take longer."""
    grid = Workload(
        batch=1, frames=np.array([frames, frames + 4]), height=height, width=width, steps=1, text_len=512
    )
    root = dit_model.evaluate(grid)["diffusion"]
    assert np.all(np.isfinite(root)) and np.all(root > 0)
    assert root[1] > root[0]
    point = dit_model.evaluate_point(
        Workload(batch=1, frames=frames, height=height, width=width, steps=1, text_len=512)
    )
    assert point["diffusion"] == pytest.approx(root[0], rel=1e-12)


def test_more_bandwidth_never_slows_the_same_chip() -> None:
    """H200 (4.8 TB/s) is at least as fast as H100 SXM (3.35 TB/s): same compute, more bandwidth."""
    tree = dit_tree(get_variant("t2v-14b"), OFFICIAL)
    h100 = time_model(tree, get_accelerator("h100")).evaluate_point(ONE)["diffusion"]
    h200 = time_model(tree, get_accelerator("h200")).evaluate_point(ONE)["diffusion"]
    assert h200 < h100


def test_point_evaluation_needs_integers(dit_model: TimeModel) -> None:
    """evaluate_point rejects arrays, naming the field."""
    with pytest.raises(LlmPerfOptError, match=r"workload.frames: one point needs an integer"):
        dit_model.evaluate_point(
            Workload(batch=1, frames=np.array([81]), height=480, width=832, steps=1, text_len=512)
        )
