"""FLOPs from recorded shapes against torch's FlopCounterMode, op by op, through a real profiler trace."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.profiling.op_flops import SHAPE_FLOPS, kernel_op_class, op_class_of, shape_flops

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _cases() -> list[tuple[str, Callable[[], object]]]:
    r = torch.randn
    return [
        ("mm", lambda: r(5, 7) @ r(7, 3)),
        ("addmm", lambda: F.linear(r(6, 8), r(4, 8), r(4))),
        ("bmm", lambda: torch.bmm(r(2, 5, 7), r(2, 7, 3))),
        ("baddbmm", lambda: torch.baddbmm(r(2, 5, 3), r(2, 5, 7), r(2, 7, 3))),
        (
            "conv3d",
            lambda: F.conv3d(r(1, 4, 3, 9, 9), r(6, 2, 3, 3, 3), stride=(1, 2, 2), padding=1, groups=2),
        ),
        ("conv2d_dilated", lambda: F.conv2d(r(2, 3, 11, 10), r(5, 3, 3, 2), padding=(2, 0), dilation=2)),
        ("conv_transpose2d", lambda: F.conv_transpose2d(r(1, 4, 5, 5), r(4, 3, 3, 3), stride=2)),
        ("sdpa", lambda: F.scaled_dot_product_attention(r(1, 2, 6, 8), r(1, 2, 10, 8), r(1, 2, 10, 4))),
    ]


def test_trace_shapes_give_flop_counter_flops(tmp_path: Path) -> None:
    """Each op's FLOPs from its recorded shapes equal FlopCounterMode's count of the same call."""
    from torch.profiler import ProfilerActivity, profile, record_function
    from torch.utils.flop_counter import FlopCounterMode

    from llm_perf_opt.profiling.trace import import_trace

    cases = _cases()
    expected = {}
    for name, run in cases:
        torch.manual_seed(0)
        with FlopCounterMode(display=False) as counter:
            run()
        expected[name] = counter.get_total_flops()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for name, run in cases:
            with record_function(f"diffusion.{name}"):
                run()
    prof.export_chrome_trace(str(tmp_path / "ops.json"))
    traced = import_trace(tmp_path / "ops.json")
    assert {name: traced.module(f"diffusion.{name}").own_flops for name, _ in cases} == expected
    assert all(value > 0 for value in expected.values())


def test_shapes_that_do_not_fit_are_errors() -> None:
    """A registered op whose recorded shapes do not fit its formula is an error, not a silent zero."""
    with pytest.raises(LlmPerfOptError, match=r"^Input Dims: aten::bmm shapes \[\[2, 3\]\] do not fit"):
        shape_flops("aten::bmm", [[2, 3]], [])
    with pytest.raises(LlmPerfOptError, match="stride must be a list of integers, got 'x'"):
        shape_flops("aten::convolution", [[1, 1, 4], [1, 1, 3], []], ["", "", "", "x", "[0]", "[1]", "False"])
    assert shape_flops("aten::relu", [[3]], [""]) is None
    assert "aten::linear" not in SHAPE_FLOPS  # composites: their registered op beneath is counted


@pytest.mark.parametrize(
    ("name", "op_class"),
    [
        ("aten::linear", "matmul"),
        ("aten::conv3d", "convolution"),
        ("aten::scaled_dot_product_attention", "attention"),
        ("aten::layer_norm", "elementwise"),
    ],
)
def test_operator_op_classes(name: str, op_class: str) -> None:
    """Outermost operators name their op class; everything unlisted is element-wise."""
    assert op_class_of(name) == op_class


@pytest.mark.parametrize(
    ("kernel", "op_class"),
    [
        ("flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4>>", "attention"),
        ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "matmul"),
        ("void cudnn::cnn::implicit_convolve_sgemm<float>", "convolution"),
        ("void at::native::vectorized_elementwise_kernel<4, GeluCUDAKernelImpl>", "elementwise"),
    ],
)
def test_kernel_names_give_op_classes(kernel: str, op_class: str) -> None:
    """Kernel names of an Nsight export map to op classes by their telltale parts."""
    assert kernel_op_class(kernel) == op_class
