"""Golden numbers of every primitive, with the hand arithmetic; they stand without torch."""

from __future__ import annotations

import pytest
import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic import PRIMITIVES, Cost, OpCall, primitive
from llm_perf_opt.symbolic.dtypes import BF16, FP4, FP16, FP32
from llm_perf_opt.symbolic.primitives import (
    VECTOR_FLOPS_PER_ELEMENT,
    add,
    addmm,
    baddbmm,
    bmm,
    conv2d,
    conv3d,
    conv_output_size,
    convolution,
    embedding,
    gelu,
    gelu_tanh,
    layer_norm,
    linear,
    mm,
    mul,
    rms_norm,
    rope,
    scaled_dot_product_attention,
    silu,
    softmax,
    to_copy,
)

# (call, registry key, flops, vector_flops, bytes_read, bytes_written, activation_bytes)
GOLDEN = [
    # 2·3·5·7 = 210; read 2·(3·5 + 5·7) = 100; write 2·3·7 = 42
    (lambda: mm(3, 5, 7, dtype=BF16), "mm", 210, 0, 100, 42, 42),
    # mm + bias read 2·7 = 14: read 114
    (lambda: addmm(3, 5, 7, dtype=BF16), "addmm", 210, 0, 114, 42, 42),
    # 2·2·3·5·7 = 420; read 4·(2·3·5 + 2·5·7) = 400; write 4·2·3·7 = 168
    (lambda: bmm(2, 3, 5, 7, dtype=FP32), "bmm", 420, 0, 400, 168, 168),
    # bmm + self read 4·2·3·7 = 168: read 568
    (lambda: baddbmm(2, 3, 5, 7, dtype=FP32), "baddbmm", 420, 0, 568, 168, 168),
    # out 5×6 (stride 2, padding 1 on 10×12, kernel 3×3): 2·2·4·6·9·30 = 25,920;
    # read 4·(2·4·10·12 + 6·4·9 + 6) = 4·(960 + 216 + 6) = 4,728; write 4·2·6·30 = 1,440
    (
        lambda: convolution(
            2, 4, 6, kernel=(3, 3), out_spatial=(5, 6), in_spatial=(10, 12), bias=True, dtype=FP32
        ),
        "convolution",
        25_920,
        0,
        4_728,
        1_440,
        1_440,
    ),
    # groups 2: 2·1·(8/2)·4·27·(5·3·4) = 51,840; read 2·(8·210 + 4·4·27) = 4,224; write 2·4·60 = 480
    (
        lambda: convolution(
            1, 8, 4, kernel=(3, 3, 3), out_spatial=(5, 3, 4), in_spatial=(5, 6, 7), groups=2, dtype=BF16
        ),
        "convolution",
        51_840,
        0,
        4_224,
        480,
        480,
    ),
    # 4·2·3·5·7·8 = 6,720; scores 2·3·5·7 = 210 → vector 6·210 = 1,260;
    # read 2·(q 2·3·5·8 + k,v 2·(2·3·7·8)) = 2·(240 + 672) = 1,824; write 2·240 + lse 4·2·3·5 = 600
    (
        lambda: scaled_dot_product_attention(2, 3, 5, 7, 8, dtype=BF16),
        "_scaled_dot_product_flash_attention",
        6_720,
        1_260,
        1_824,
        600,
        600,
    ),
    # 12 elements · (5 + 2 affine) = 84; read 2·12 + 2·(2·4) = 40; write 2·12 + 4·(2·3) = 48
    (lambda: layer_norm(3, 4, dtype=FP16), "native_layer_norm", 0, 84, 40, 48, 48),
    # no affine: 12·5 = 60; read 24; write 48
    (lambda: layer_norm(3, 4, dtype=FP16, affine=False), "native_layer_norm", 0, 60, 24, 48, 48),
    # 12·(3 + 1) = 48; read 2·12 + 4·4 = 40; write 2·12 + 4·3 = 36
    (lambda: rms_norm(3, 4, dtype=BF16, weight_dtype=FP32), "_fused_rms_norm", 0, 48, 40, 36, 36),
    # 10·9 = 90; read 2·10; write 2·10
    (lambda: gelu_tanh(10, dtype=BF16), "gelu_tanh", 0, 90, 20, 20, 20),
    # 10·5 = 50
    (lambda: gelu(10, dtype=BF16), "gelu", 0, 50, 20, 20, 20),
    # 10·4 = 40
    (lambda: silu(10, dtype=BF16), "silu", 0, 40, 20, 20, 20),
    # 10·5 = 50; read 4·10; write 4·10
    (lambda: softmax(10, dtype=FP32), "_softmax", 0, 50, 40, 40, 40),
    # 64·3 = 192; read 2·64 + 2·(4·16) = 256; write 2·64 = 128
    (lambda: rope(64, dtype=BF16, table_numel=16, table_dtype=FP32), "rope", 0, 192, 256, 128, 128),
    # 12; read 2·12 + 4·4 = 40; write 2·12 = 24
    (lambda: mul(12, dtype=BF16, other_numel=4, other_dtype=FP32), "mul", 0, 12, 40, 24, 24),
    # in place: 12; read 2·12 + 2·12 = 48; write 24, no new activation
    (lambda: add(12, dtype=BF16, inplace=True), "add", 0, 12, 48, 24, 0),
    # read 4·10; write 2·10
    (lambda: to_copy(10, in_dtype=FP32, out_dtype=BF16), "_to_copy", 0, 0, 40, 20, 20),
    # read int64 ids 8·5 + rows 2·5·8 = 120; write 2·40 = 80
    (lambda: embedding(5, 8, dtype=BF16), "embedding", 0, 0, 120, 80, 80),
]


@pytest.mark.parametrize(("call", "key", "flops", "vector", "read", "written", "activations"), GOLDEN)
def test_primitive_golden(
    call: object, key: str, flops: int, vector: int, read: int, written: int, activations: int
) -> None:
    """Each primitive gives the hand-computed FLOPs and bytes and carries its registry key."""
    op = call()  # type: ignore[operator]
    assert isinstance(op, OpCall)
    assert op.primitive == key
    assert key in PRIMITIVES
    assert (op.cost.flops, op.cost.vector_flops) == (flops, vector)
    assert (op.cost.bytes_read, op.cost.bytes_written, op.cost.activation_bytes) == (
        read,
        written,
        activations,
    )
    assert (op.cost.params, op.cost.weight_bytes) == (0, 0)


def test_conv_output_size_golden() -> None:
    """conv_output_size follows torch's ⌊(size + 2·padding − dilation·(kernel − 1) − 1)/stride⌋ + 1."""
    # ⌊(10 + 2 − 2 − 1)/2⌋ + 1 = 5; ⌊(12 + 2 − 2 − 1)/2⌋ + 1 = 6; ⌊(7 − 2·2 − 1)/1⌋ + 1 = 3
    assert conv_output_size(10, 3, stride=2, padding=1) == 5
    assert conv_output_size(12, 3, stride=2, padding=1) == 6
    assert conv_output_size(7, 3, dilation=2) == 3


def test_linear_bytes_match_the_reference_to_q() -> None:
    """A bf16 Linear reads x + W + b and writes y: the reference's to_q of T2V-14B at 480p."""
    op = linear(32_760, 5120, 5120, bias=True, act_dtype=BF16, weight_dtype=BF16)
    assert op.primitive == "addmm"
    assert op.cost.flops == 2 * 32_760 * 5120 * 5120 == 1_717_567_488_000
    assert op.cost.bytes_read == 2 * (32_760 * 5120 + 5120**2 + 5120) == 387_901_440
    assert op.cost.bytes_written == 2 * 32_760 * 5120 == 335_462_400
    assert op.cost.params == 5120 * 5120 + 5120
    assert op.cost.weight_bytes == 2 * (5120 * 5120 + 5120)
    # attn2.to_k over the 512 text tokens
    text = linear(512, 5120, 5120, bias=True, act_dtype=BF16, weight_dtype=BF16)
    assert (text.cost.flops, text.cost.bytes_read, text.cost.bytes_written) == (
        26_843_545_600,
        57_681_920,
        5_242_880,
    )


def test_linear_without_bias_is_mm() -> None:
    """A Linear without bias is an mm with in·out parameters."""
    op = linear(3, 5, 7, bias=False, act_dtype=BF16, weight_dtype=FP32)
    assert op.primitive == "mm"
    # read 2·3·5 + 4·5·7 = 170
    assert (op.cost.bytes_read, op.cost.params, op.cost.weight_bytes) == (170, 35, 140)


def test_fused_sdpa_matches_the_reference() -> None:
    """Fused SDPA of T2V-14B at 480p: 4·B·H·Sq·Sk·D FLOPs, q,k,v read, out + fp32 lse written."""
    self_attention = scaled_dot_product_attention(1, 40, 32_760, 32_760, 128, dtype=BF16).cost
    # 4·40·32,760²·128
    assert self_attention.flops == 21_979_496_448_000
    # 3·32,760·5,120·2
    assert self_attention.bytes_read == 1_006_387_200
    # 32,760·5,120·2 + 40·32,760·4
    assert self_attention.bytes_written == 340_704_000
    cross = scaled_dot_product_attention(1, 40, 32_760, 512, 128, dtype=BF16).cost
    # 4·40·32,760·512·128; read 2·32,760·5,120 + 2·2·512·5,120
    assert (cross.flops, cross.bytes_read, cross.bytes_written) == (343_513_497_600, 345_948_160, 340_704_000)


def test_layer_norm_bytes_match_the_reference() -> None:
    """An fp32 LayerNorm reads x (+ weight, bias) and writes y, mean and rstd: the reference's norm1/norm2."""
    plain = layer_norm(32_760, 5120, dtype=FP32, affine=False).cost
    # read 4·32,760·5,120; write the same + 2·4·32,760
    assert (plain.bytes_read, plain.bytes_written) == (670_924_800, 671_186_880)
    affine = layer_norm(32_760, 5120, dtype=FP32).cost
    # + 2·4·5,120 read
    assert affine.bytes_read == 670_965_760


def test_patch_embedding_conv_matches_the_reference() -> None:
    """The T2V-14B patch Conv3d at 480p counts 2·L·64·D FLOPs with 16·4·D + D parameters."""
    op = conv3d(
        1,
        16,
        5120,
        kernel=(1, 2, 2),
        out_spatial=(21, 30, 52),
        in_spatial=(21, 60, 104),
        act_dtype=BF16,
        weight_dtype=BF16,
    )
    # 2·(21·30·52 = 32,760)·(16·2·2 = 64)·5,120
    assert op.cost.flops == 21_469_593_600
    assert op.cost.params == 5120 * 16 * 4 + 5120


def test_conv2d_parameters() -> None:
    """A grouped Conv2d owns c_out·c_in/groups·kh·kw (+ c_out) parameters."""
    op = conv2d(
        1,
        8,
        4,
        kernel=(3, 3),
        out_spatial=(4, 4),
        in_spatial=(6, 6),
        groups=2,
        act_dtype=FP32,
        weight_dtype=FP32,
    )
    # 4·4·9 + 4 = 148 parameters, 4 bytes each
    assert (op.cost.params, op.cost.weight_bytes) == (148, 592)


def test_conv_rank_mismatch_is_an_error() -> None:
    """A convolution whose kernel and spatial sizes disagree in rank is rejected."""
    with pytest.raises(LlmPerfOptError, match="same rank"):
        convolution(1, 2, 3, kernel=(3, 3), out_spatial=(4,), in_spatial=(6, 6), dtype=FP32)
    with pytest.raises(LlmPerfOptError, match="conv3d: kernel"):
        conv3d(
            1, 2, 3, kernel=(3, 3), out_spatial=(4, 4), in_spatial=(6, 6), act_dtype=FP32, weight_dtype=FP32
        )


def test_sdpa_aliases_share_the_formula() -> None:
    """The efficient, cudnn and CPU-flash attention keys compute the flash formula under their own key."""
    expected = scaled_dot_product_attention(2, 3, 5, 7, 8, dtype=BF16).cost
    for key in (
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
    ):
        op = PRIMITIVES[key](2, 3, 5, 7, 8, dtype=BF16)
        assert op.primitive == key
        assert op.cost == expected


def test_symbolic_shapes_give_expressions() -> None:
    """Primitives accept SymPy sizes and return expressions in them."""
    m = sympy.Symbol("m", positive=True, integer=True)
    assert mm(m, 4, 5, dtype=BF16).cost.flops == 40 * m


def test_fp4_bytes_are_half_a_byte_per_element() -> None:
    """FP4 operands count half a byte per element, exactly."""
    # read ½·(3·4) + ½·(4·5) = 16; write ½·15
    cost = mm(3, 4, 5, dtype=FP4).cost
    assert cost.bytes_read == 16
    assert cost.bytes_written == sympy.Rational(15, 2)


def test_duplicate_registration_is_an_error() -> None:
    """Registering a formula under a key that is already registered raises and changes nothing."""
    before = dict(PRIMITIVES)
    with pytest.raises(LlmPerfOptError, match="'mm' is already registered"):

        @primitive("mm")
        def another_mm(m: int) -> Cost:
            return Cost(flops=m)

    with pytest.raises(LlmPerfOptError, match="already registered"):

        @primitive("a_brand_new_key_for_this_test", "bmm")
        def another_bmm(m: int) -> Cost:
            return Cost(flops=m)

    assert before == PRIMITIVES


def test_every_vector_rule_is_used_by_a_primitive() -> None:
    """The per-element table has no dead rows: each row is a primitive key or a documented part of one."""
    used_in_composites = {
        "affine_scale",
        "affine_shift",
        "attention_score",
        "layer_norm",
        "rms_norm",
        "softmax",
    }
    for rule in VECTOR_FLOPS_PER_ELEMENT:
        assert rule in PRIMITIVES or rule in used_in_composites
