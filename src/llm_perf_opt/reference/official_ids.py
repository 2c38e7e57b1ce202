"""diffusers' Wan2.1 module names re-keyed onto the official module ids, so costs compare id by id.

The analytic model names every module ``diffusion.`` + its name in the official implementation
(``wan/modules/model.py`` of Wan-Video/Wan2.1). :data:`DIFFUSERS_TO_OFFICIAL` is the one table from
diffusers' ``WanTransformer3DModel`` names (modules, and the three parameters that live outside any
module of their own) to those official names. Where the structures differ:

- **Names.** ``attn1``/``attn2`` are ``self_attn``/``cross_attn``; ``to_q``/``to_k``/``to_v``/
  ``to_out.0`` are ``q``/``k``/``v``/``o``; ``add_k_proj``/``add_v_proj``/``norm_added_k`` are
  ``k_img``/``v_img``/``norm_k_img``; each block's ``scale_shift_table`` is ``modulation``.
- **Norm order.** diffusers numbers a block's norms in call order: its ``norm2`` (affine, before the
  cross-attention) is the official ``norm3``, its ``norm3`` (before the FFN) the official ``norm2``.
- **Activations.** diffusers' ``FeedForward`` wraps the first Linear in the activation module
  (``ffn.net.0`` = GELU holding ``ffn.net.0.proj``); officially they are siblings in an
  ``nn.Sequential``: ``ffn.0`` (Linear), ``ffn.1`` (GELU), ``ffn.2`` (Linear). The wrapper's own op (the
  GELU) is keyed ``ffn.1``, its Linear ``ffn.0``. Same for ``img_emb.proj.1``/``.2``.
- **Embeddings.** diffusers groups the time, text and image embeddings under ``condition_embedder``,
  which has no official counterpart; its children map to ``time_embedding.0/.1/.2``,
  ``time_projection.0`` (its ``act_fn``) and ``.1`` (``time_proj``), ``text_embedding.0/.1/.2`` and
  ``img_emb.proj.0..4`` (+ ``img_emb.emb_pos``). ``time_projection`` and ``img_emb.proj`` exist only as
  the sums of their children. The sinusoidal timestep embedding (diffusers ``timesteps_proj``; official
  ``sinusoidal_embedding_1d``, a function called by ``WanModel.forward``) counts on ``diffusion``.
- **Head.** diffusers' ``norm_out``/``proj_out``/``scale_shift_table`` sit at the top level; officially
  they are ``head.norm``/``head.head``/``head.modulation`` inside ``Head``. The head's modulation
  arithmetic runs in diffusers' top-level forward, so its (element-wise) bytes land on ``diffusion``,
  not on ``diffusion.head``.
- **Rotary embedding.** diffusers builds the cos/sin tables once per forward in a top-level ``rope``
  module (no official module: the official code keeps ``freqs`` as a plain tensor and rebuilds the
  per-position table inside ``rope_apply`` in every self-attention); its bytes count on ``diffusion``.
  Applying the rotation happens inside ``attn1`` = ``self_attn`` in both.
- **Condition concat.** For i2v/flf2v the diffusers pipeline concatenates noise and condition channels
  before calling the transformer (officially inside ``WanModel.forward``): not measured here.

A diffusers name mapped to ``None`` has no official counterpart; its own ops count on its nearest
mapped ancestor. ModuleList containers (``blocks``, ``to_out``, ``ffn.net``) never run and hold no ops.
The harness fails on any diffusers name this table does not know, so a diffusers upgrade that changes
the structure is caught instead of silently mis-keyed.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Final

from attrs import field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference.counting import OpCost, exclusive_costs, read_only

__all__ = [
    "CLIP_VISION_TO_OFFICIAL",
    "DIFFUSERS_TO_OFFICIAL",
    "IMAGE_ENCODER_NAMES",
    "IMAGE_ENCODER_STAGE",
    "STAGE",
    "TEXT_ENCODER_NAMES",
    "TEXT_ENCODER_STAGE",
    "UMT5_TO_OFFICIAL",
    "VACE_TO_OFFICIAL",
    "VAE_BLOCK_PARTS",
    "VAE_DIFFUSERS_TO_OFFICIAL",
    "VAE_STAGE",
    "NameTable",
    "OfficialCosts",
    "official_id",
    "official_vae_id",
    "to_official",
]

STAGE: Final = "diffusion"
"""Stage prefix of every DiT module id."""

DIFFUSERS_TO_OFFICIAL: Final[tuple[tuple[str, str | None], ...]] = (
    ("", ""),  # WanTransformer3DModel = WanModel
    ("rope", None),  # cos/sin tables; official: freqs tensor + rope_apply per layer
    ("patch_embedding", "patch_embedding"),  # Conv3d(in_dim, dim, (1,2,2))
    ("condition_embedder", None),  # groups time/text/image embeddings
    ("condition_embedder.timesteps_proj", None),  # official: sinusoidal_embedding_1d()
    ("condition_embedder.time_embedder", "time_embedding"),
    ("condition_embedder.time_embedder.linear_1", "time_embedding.0"),  # Linear(freq_dim, dim)
    ("condition_embedder.time_embedder.act", "time_embedding.1"),  # SiLU
    ("condition_embedder.time_embedder.linear_2", "time_embedding.2"),  # Linear(dim, dim)
    ("condition_embedder.act_fn", "time_projection.0"),  # SiLU
    ("condition_embedder.time_proj", "time_projection.1"),  # Linear(dim, 6·dim)
    ("condition_embedder.text_embedder", "text_embedding"),
    ("condition_embedder.text_embedder.linear_1", "text_embedding.0"),  # Linear(text_dim, dim)
    ("condition_embedder.text_embedder.act_1", "text_embedding.1"),  # GELU(tanh)
    ("condition_embedder.text_embedder.linear_2", "text_embedding.2"),  # Linear(dim, dim)
    ("condition_embedder.image_embedder", "img_emb"),  # MLPProj
    ("condition_embedder.image_embedder.pos_embed", "img_emb.emb_pos"),  # parameter [1, 514, 1280], flf2v
    ("condition_embedder.image_embedder.norm1", "img_emb.proj.0"),  # LayerNorm(1280)
    ("condition_embedder.image_embedder.ff", None),  # FeedForward holding proj.1..3
    ("condition_embedder.image_embedder.ff.net", None),  # ModuleList
    ("condition_embedder.image_embedder.ff.net.0", "img_emb.proj.2"),  # GELU (exact), wraps proj.1
    ("condition_embedder.image_embedder.ff.net.0.proj", "img_emb.proj.1"),  # Linear(1280, 1280)
    ("condition_embedder.image_embedder.ff.net.1", None),  # Dropout(0)
    ("condition_embedder.image_embedder.ff.net.2", "img_emb.proj.3"),  # Linear(1280, dim)
    ("condition_embedder.image_embedder.norm2", "img_emb.proj.4"),  # LayerNorm(dim)
    ("blocks", "blocks"),  # ModuleList
    ("blocks.{n}", "blocks.{n}"),  # WanTransformerBlock = WanAttentionBlock
    ("blocks.{n}.scale_shift_table", "blocks.{n}.modulation"),  # parameter [1, 6, dim]
    ("blocks.{n}.norm1", "blocks.{n}.norm1"),  # LayerNorm, no affine
    ("blocks.{n}.attn1", "blocks.{n}.self_attn"),
    ("blocks.{n}.attn1.to_q", "blocks.{n}.self_attn.q"),
    ("blocks.{n}.attn1.to_k", "blocks.{n}.self_attn.k"),
    ("blocks.{n}.attn1.to_v", "blocks.{n}.self_attn.v"),
    ("blocks.{n}.attn1.to_out", None),  # ModuleList [Linear, Dropout]
    ("blocks.{n}.attn1.to_out.0", "blocks.{n}.self_attn.o"),
    ("blocks.{n}.attn1.to_out.1", None),  # Dropout(0)
    ("blocks.{n}.attn1.norm_q", "blocks.{n}.self_attn.norm_q"),  # RMSNorm(dim)
    ("blocks.{n}.attn1.norm_k", "blocks.{n}.self_attn.norm_k"),  # RMSNorm(dim)
    ("blocks.{n}.norm2", "blocks.{n}.norm3"),  # affine LayerNorm before the cross-attention
    ("blocks.{n}.attn2", "blocks.{n}.cross_attn"),
    ("blocks.{n}.attn2.to_q", "blocks.{n}.cross_attn.q"),
    ("blocks.{n}.attn2.to_k", "blocks.{n}.cross_attn.k"),
    ("blocks.{n}.attn2.to_v", "blocks.{n}.cross_attn.v"),
    ("blocks.{n}.attn2.to_out", None),  # ModuleList [Linear, Dropout]
    ("blocks.{n}.attn2.to_out.0", "blocks.{n}.cross_attn.o"),
    ("blocks.{n}.attn2.to_out.1", None),  # Dropout(0)
    ("blocks.{n}.attn2.norm_q", "blocks.{n}.cross_attn.norm_q"),
    ("blocks.{n}.attn2.norm_k", "blocks.{n}.cross_attn.norm_k"),
    ("blocks.{n}.attn2.add_k_proj", "blocks.{n}.cross_attn.k_img"),  # i2v/flf2v
    ("blocks.{n}.attn2.add_v_proj", "blocks.{n}.cross_attn.v_img"),  # i2v/flf2v
    ("blocks.{n}.attn2.norm_added_k", "blocks.{n}.cross_attn.norm_k_img"),  # i2v/flf2v
    ("blocks.{n}.norm3", "blocks.{n}.norm2"),  # LayerNorm, no affine, before the FFN
    ("blocks.{n}.ffn", "blocks.{n}.ffn"),
    ("blocks.{n}.ffn.net", None),  # ModuleList
    ("blocks.{n}.ffn.net.0", "blocks.{n}.ffn.1"),  # GELU(tanh), wraps ffn.0
    ("blocks.{n}.ffn.net.0.proj", "blocks.{n}.ffn.0"),  # Linear(dim, ffn_dim)
    ("blocks.{n}.ffn.net.1", None),  # Dropout(0)
    ("blocks.{n}.ffn.net.2", "blocks.{n}.ffn.2"),  # Linear(ffn_dim, dim)
    ("norm_out", "head.norm"),  # LayerNorm, no affine
    ("proj_out", "head.head"),  # Linear(dim, out_dim·1·2·2)
    ("scale_shift_table", "head.modulation"),  # parameter [1, 2, dim]
)
"""diffusers name → official name (without the stage prefix); ``{n}`` is a block index."""

VACE_TO_OFFICIAL: Final[tuple[tuple[str, str | None], ...]] = (
    ("vace_patch_embedding", "vace_patch_embedding"),  # Conv3d(vace_in_dim, dim, (1,2,2))
    ("vace_blocks", "vace_blocks"),  # ModuleList
    *(
        ("vace_" + diffusers_name, None if official_name is None else "vace_" + official_name)
        for diffusers_name, official_name in DIFFUSERS_TO_OFFICIAL
        if diffusers_name.startswith("blocks.{n}")
    ),
    ("vace_blocks.{n}.proj_in", "vace_blocks.{n}.before_proj"),  # Linear(dim, dim), block 0 only
    ("vace_blocks.{n}.proj_out", "vace_blocks.{n}.after_proj"),  # Linear(dim, dim): the hint
)
"""diffusers' ``WanVACETransformer3DModel`` names beyond the plain transformer's: its VACE blocks are
transformer blocks with the same names (``vace_blocks.{n}.attn1`` = ``vace_blocks.{n}.self_attn``…), the
official ``before_proj`` / ``after_proj`` are diffusers' ``proj_in`` / ``proj_out``. The hint additions run in
diffusers' top-level forward (officially inside each ``BaseWanAttentionBlock``): element-wise, no FLOPs."""


def _compile(table: tuple[tuple[str, str | None], ...]) -> dict[str, str | None]:
    """Index rows by a pattern whose block indices are replaced by ``{n}``; duplicates are an error."""
    index: dict[str, str | None] = {}
    for diffusers_name, official_name in table:
        if diffusers_name in index:
            raise LlmPerfOptError(f"DIFFUSERS_TO_OFFICIAL: duplicate row for {diffusers_name!r}")
        index[diffusers_name] = official_name
    return index


_RULES: Final = _compile(DIFFUSERS_TO_OFFICIAL + VACE_TO_OFFICIAL)
_BLOCK_INDEX: Final = re.compile(r"((?<=^blocks\.)|(?<=^vace_blocks\.))\d+(?=\.|$)")


def official_id(diffusers_name: str) -> str | None:
    """``diffusion.<official name>`` of a diffusers module or parameter name; ``None`` if it has none.

    Raises :class:`LlmPerfOptError` for a name the table does not know.
    """
    match = _BLOCK_INDEX.search(diffusers_name)
    pattern = _BLOCK_INDEX.sub("{n}", diffusers_name, count=1)
    if pattern not in _RULES:
        raise LlmPerfOptError(
            f"module: diffusers name {diffusers_name!r} is not in DIFFUSERS_TO_OFFICIAL; "
            "the installed diffusers may differ from the pinned version"
        )
    official = _RULES[pattern]
    if official is None:
        return None
    if match is not None:
        official = official.replace("{n}", match.group(0))
    return f"{STAGE}.{official}" if official else STAGE


def _nearest_official_id(diffusers_name: str) -> str:
    """The official id of a name, or of its nearest ancestor that has one (the root always has)."""
    name = diffusers_name
    while True:
        official = official_id(name)
        if official is not None:
            return official
        name = name.rpartition(".")[0]


def _official_ancestors(official: str) -> list[str]:
    """``diffusion.blocks.0.ffn.0`` → itself and every dotted prefix down to ``diffusion``."""
    parts = official.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@frozen(kw_only=True)
class OfficialCosts:
    """Measured costs keyed by official module id, each id including all ids below it.

    Built from a diffusers measurement by :func:`to_official`: every diffusers module's *own* ops go to
    its official id (or its nearest mapped ancestor's) and are then summed up the official tree.
    """

    by_id: Mapping[str, Mapping[str, OpCost]] = field(converter=read_only)
    """Inclusive cost per official id, per aten op."""
    parameters: Mapping[str, int] = field(converter=read_only)
    """Inclusive parameter count per official id (``diffusion`` holds them all)."""
    classes: Mapping[str, str] = field(converter=read_only)
    """Class of the diffusers module behind each official id that has one (``torch.nn.Linear``...)."""

    def cost(self, official: str) -> OpCost:
        """Inclusive cost of one id summed over its ops (zero for an id with no ops)."""
        total = OpCost()
        for cost in self.by_id.get(official, {}).values():
            total = total + cost
        return total

    @property
    def flops(self) -> dict[str, int]:
        """Inclusive FLOPs per official id."""
        return {official: self.cost(official).flops for official in self.by_id}

    def op_cost(self, official: str, *ops: str) -> OpCost:
        """Inclusive cost of one id restricted to some aten ops (``aten.addmm``...)."""
        costs = self.by_id.get(official, {})
        total = OpCost()
        for op in ops:
            total = total + costs.get(op, OpCost())
        return total


def to_official(
    by_module: Mapping[str, Mapping[str, OpCost]],
    parameters: Mapping[str, int],
    module_classes: Mapping[str, str],
) -> OfficialCosts:
    """Re-key a diffusers measurement onto official ids.

    ``by_module`` is the inclusive cost per diffusers module and op, ``parameters`` the size of each
    diffusers parameter, ``module_classes`` the class of every diffusers module (each must be in the
    table, ran or not).
    """
    classes: dict[str, str] = {}
    for name, cls in module_classes.items():
        official = official_id(name)
        if official is not None:
            classes[official] = cls
    by_id: dict[str, dict[str, OpCost]] = defaultdict(dict)
    for diffusers_name, ops in exclusive_costs(by_module).items():
        official = _nearest_official_id(diffusers_name)
        for ancestor in _official_ancestors(official):
            target = by_id[ancestor]
            for op, cost in ops.items():
                target[op] = target.get(op, OpCost()) + cost
    counts: dict[str, int] = defaultdict(int)
    for name, numel in parameters.items():
        owner = name if _BLOCK_INDEX.sub("{n}", name, count=1) in _RULES else name.rpartition(".")[0]
        for ancestor in _official_ancestors(_nearest_official_id(owner)):
            counts[ancestor] += numel
    return OfficialCosts(
        by_id={official: read_only(ops) for official, ops in by_id.items()},
        parameters=dict(counts),
        classes=classes,
    )


# ─── Wan-VAE ────────────────────────────────────────────────────────────────────────────────────

VAE_STAGE: Final = "vae"
"""Stage prefix of every VAE module id."""


def _vae_decoder_block_rows(levels: int = 4, resnets: int = 3) -> tuple[tuple[str, str | None], ...]:
    """diffusers groups each decoder level in a ``WanUpBlock`` (``resnets`` + ``upsamplers.0``); the
    official ``Decoder3d.upsamples`` is one flat ``nn.Sequential``: level ``i`` holds indices
    ``(resnets + 1)·i`` … , its residual blocks first, then its ``Resample`` (no resample on the last).
    """
    rows: list[tuple[str, str | None]] = []
    for level in range(levels):
        base = (resnets + 1) * level
        rows += [(f"decoder.up_blocks.{level}", None), (f"decoder.up_blocks.{level}.resnets", None)]
        rows += [
            (f"decoder.up_blocks.{level}.resnets.{j}", f"decoder.upsamples.{base + j}")
            for j in range(resnets)
        ]
        if level < levels - 1:
            rows += [
                (f"decoder.up_blocks.{level}.upsamplers", None),
                (f"decoder.up_blocks.{level}.upsamplers.0", f"decoder.upsamples.{base + resnets}"),
            ]
    return tuple(rows)


def _vae_middle_rows(part: str) -> tuple[tuple[str, str | None], ...]:
    """``WanMidBlock`` keeps its residual and attention blocks in two lists; officially ``middle`` is
    one ``nn.Sequential`` (ResidualBlock, AttentionBlock, ResidualBlock)."""
    return (
        (f"{part}.mid_block", f"{part}.middle"),
        (f"{part}.mid_block.resnets", None),  # ModuleList
        (f"{part}.mid_block.attentions", None),  # ModuleList
        (f"{part}.mid_block.resnets.0", f"{part}.middle.0"),
        (f"{part}.mid_block.attentions.0", f"{part}.middle.1"),
        (f"{part}.mid_block.resnets.1", f"{part}.middle.2"),
    )


def _vae_head_rows(part: str) -> tuple[tuple[str, str | None], ...]:
    """diffusers' ``norm_out``, ``nonlinearity`` and ``conv_out`` are the official ``head`` Sequential."""
    return (
        (f"{part}.norm_out", f"{part}.head.0"),  # RMS_norm
        (f"{part}.nonlinearity", f"{part}.head.1"),  # SiLU, used only before conv_out
        (f"{part}.conv_out", f"{part}.head.2"),  # CausalConv3d
    )


VAE_DIFFUSERS_TO_OFFICIAL: Final[tuple[tuple[str, str | None], ...]] = (
    ("", ""),  # AutoencoderKLWan = WanVAE_ (measured through an encode or decode wrapper)
    ("quant_conv", "conv1"),  # CausalConv3d(2·z, 2·z, 1) after the encoder
    ("post_quant_conv", "conv2"),  # CausalConv3d(z, z, 1) before the decoder
    ("encoder", "encoder"),  # WanEncoder3d = Encoder3d
    ("encoder.conv_in", "encoder.conv1"),
    ("encoder.down_blocks", "encoder.downsamples"),  # ModuleList = nn.Sequential, same order
    ("encoder.down_blocks.{n}", "encoder.downsamples.{n}"),  # WanResidualBlock / WanResample
    *_vae_middle_rows("encoder"),
    *_vae_head_rows("encoder"),
    ("decoder", "decoder"),  # WanDecoder3d = Decoder3d
    ("decoder.conv_in", "decoder.conv1"),
    *_vae_middle_rows("decoder"),
    ("decoder.up_blocks", "decoder.upsamples"),
    *_vae_decoder_block_rows(),
    *_vae_head_rows("decoder"),
)
"""diffusers ``AutoencoderKLWan`` name → official ``WanVAE_`` name (without the stage prefix), down to
the blocks; ``{n}`` is an index kept as is. Inside a block, :data:`VAE_BLOCK_PARTS` applies."""

VAE_BLOCK_PARTS: Final[tuple[tuple[str, str | None], ...]] = (
    # WanResidualBlock = ResidualBlock, whose official layers sit in one nn.Sequential ``residual``
    ("norm1", "residual.0"),  # RMS_norm
    ("nonlinearity", None),  # one SiLU module applied twice: official residual.1 and residual.4
    ("conv1", "residual.2"),  # CausalConv3d 3×3×3
    ("norm2", "residual.3"),  # RMS_norm
    ("dropout", "residual.5"),  # Dropout(0)
    ("conv2", "residual.6"),  # CausalConv3d 3×3×3
    ("conv_shortcut", "shortcut"),  # CausalConv3d 1×1×1, or Identity
    # WanAttentionBlock = AttentionBlock
    ("norm", "norm"),
    ("to_qkv", "to_qkv"),
    ("proj", "proj"),
    # WanResample = Resample
    ("resample", "resample"),  # Sequential
    ("resample.0", "resample.0"),  # ZeroPad2d or Upsample
    ("resample.1", "resample.1"),  # Conv2d
    ("time_conv", "time_conv"),  # CausalConv3d (3, 1, 1)
)
"""diffusers name inside a residual, attention or resample block → official name inside the block."""

_VAE_RULES: Final = _compile(VAE_DIFFUSERS_TO_OFFICIAL)
_VAE_PARTS: Final = _compile(VAE_BLOCK_PARTS)
_VAE_INDEX: Final = re.compile(r"(?<=^encoder\.down_blocks\.)\d+(?=\.|$)")


def official_vae_id(diffusers_name: str) -> str | None:
    """``vae.<official name>`` of an ``AutoencoderKLWan`` module or parameter-owner name; ``None`` if
    it has none (its ops then count on its nearest mapped ancestor).

    Raises :class:`LlmPerfOptError` for a name the tables do not know.
    """
    match = _VAE_INDEX.search(diffusers_name)
    pattern = _VAE_INDEX.sub("{n}", diffusers_name, count=1)
    official: str | None
    if pattern in _VAE_RULES:
        official = _VAE_RULES[pattern]
    else:
        block, _, part = pattern.rpartition(".")
        if part.isdigit():  # resample.0 / resample.1
            block, _, inner = block.rpartition(".")
            part = f"{inner}.{part}"
        if block not in _VAE_RULES or _VAE_RULES[block] is None or part not in _VAE_PARTS:
            raise LlmPerfOptError(
                f"module: diffusers name {diffusers_name!r} is not in VAE_DIFFUSERS_TO_OFFICIAL or "
                "VAE_BLOCK_PARTS; the installed diffusers may differ from the pinned version"
            )
        inside = _VAE_PARTS[part]
        official = None if inside is None else f"{_VAE_RULES[block]}.{inside}"
    if official is None:
        return None
    if match is not None:
        official = official.replace("{n}", match.group(0))
    return f"{VAE_STAGE}.{official}" if official else VAE_STAGE


# ─── text and image encoders (transformers) ─────────────────────────────────────────────────────


class NameTable:
    """One reference implementation's module names mapped onto the official ids of one component.

    Rows are (reference name, official name without the stage prefix, or ``None`` where the official
    code has no such module); ``{n}`` stands for the index of a block of the ``blocks`` container,
    kept as is. Several reference modules may map to one official id: their costs and parameters add
    up. A reference name the table does not know is an error, so a structural change in a new release
    is caught instead of silently mis-keyed.
    """

    def __init__(
        self, table_name: str, stage: str, rows: tuple[tuple[str, str | None], ...], blocks: str
    ) -> None:
        self.table_name = table_name
        self.stage = stage
        self.rows = rows
        self._rules: dict[str, str | None] = {}
        for reference_name, official_name in rows:
            if reference_name in self._rules:
                raise LlmPerfOptError(f"{table_name}: duplicate row for {reference_name!r}")
            self._rules[reference_name] = official_name
        self._index = re.compile(rf"(?<=^{re.escape(blocks)}\.)\d+(?=\.|$)")

    def _pattern(self, reference_name: str) -> str:
        return self._index.sub("{n}", reference_name, count=1)

    def official_id(self, reference_name: str) -> str | None:
        """``<stage>.<official name>`` of a reference module or parameter name; ``None`` if it has none.

        Raises :class:`LlmPerfOptError` for a name the table does not know.
        """
        pattern = self._pattern(reference_name)
        if pattern not in self._rules:
            raise LlmPerfOptError(
                f"module: reference name {reference_name!r} is not in {self.table_name}; "
                "the installed transformers may differ from the pinned version"
            )
        official = self._rules[pattern]
        if official is None:
            return None
        match = self._index.search(reference_name)
        if match is not None:
            official = official.replace("{n}", match.group(0))
        return f"{self.stage}.{official}" if official else self.stage

    def nearest_official_id(self, reference_name: str) -> str:
        """The official id of a name, or of its nearest ancestor that has one (the root always has)."""
        name = reference_name
        while True:
            official = self.official_id(name)
            if official is not None:
                return official
            name = name.rpartition(".")[0]

    def to_official(
        self,
        by_module: Mapping[str, Mapping[str, OpCost]],
        parameters: Mapping[str, int],
        module_classes: Mapping[str, str],
    ) -> OfficialCosts:
        """Re-key a measurement onto official ids, as :func:`to_official` does for the DiT.

        Every reference module's own ops go to its official id (or its nearest mapped ancestor's) and
        are summed up the official tree; a parameter counts on the row that names it, else on its
        owning module's id.
        """
        classes: dict[str, str] = {}
        for name, cls in module_classes.items():
            official = self.official_id(name)
            if official is not None:
                classes[official] = cls
        by_id: dict[str, dict[str, OpCost]] = defaultdict(dict)
        for reference_name, ops in exclusive_costs(by_module).items():
            for ancestor in _official_ancestors(self.nearest_official_id(reference_name)):
                target = by_id[ancestor]
                for op, cost in ops.items():
                    target[op] = target.get(op, OpCost()) + cost
        counts: dict[str, int] = defaultdict(int)
        for name, numel in parameters.items():
            owner = name if self._pattern(name) in self._rules else name.rpartition(".")[0]
            for ancestor in _official_ancestors(self.nearest_official_id(owner)):
                counts[ancestor] += numel
        return OfficialCosts(
            by_id={official: read_only(ops) for official, ops in by_id.items()},
            parameters=dict(counts),
            classes=classes,
        )


TEXT_ENCODER_STAGE: Final = "text_encoder"
"""Stage prefix of every text-encoder module id."""

UMT5_TO_OFFICIAL: Final[tuple[tuple[str, str | None], ...]] = (
    ("", ""),  # UMT5EncoderModel = T5Encoder
    ("shared", "token_embedding"),  # Embedding(vocab, dim); holds the weight tied to encoder.embed_tokens
    ("encoder", None),  # UMT5Stack: officially the T5Encoder itself
    ("encoder.embed_tokens", "token_embedding"),  # the module that runs the lookup
    ("encoder.block", "blocks"),  # ModuleList
    ("encoder.block.{n}", "blocks.{n}"),  # UMT5Block = T5SelfAttention; its residual adds count here
    ("encoder.block.{n}.layer", None),  # ModuleList [self-attention, FFN]
    ("encoder.block.{n}.layer.0", None),  # UMT5LayerSelfAttention: norm, attention, residual
    ("encoder.block.{n}.layer.0.layer_norm", "blocks.{n}.norm1"),  # UMT5LayerNorm = T5LayerNorm
    ("encoder.block.{n}.layer.0.SelfAttention", "blocks.{n}.attn"),  # UMT5Attention = T5Attention
    ("encoder.block.{n}.layer.0.SelfAttention.q", "blocks.{n}.attn.q"),
    ("encoder.block.{n}.layer.0.SelfAttention.k", "blocks.{n}.attn.k"),
    ("encoder.block.{n}.layer.0.SelfAttention.v", "blocks.{n}.attn.v"),
    ("encoder.block.{n}.layer.0.SelfAttention.o", "blocks.{n}.attn.o"),
    # Embedding(32 buckets, 64 heads) of every block; the bucketing runs in the attention's forward
    ("encoder.block.{n}.layer.0.SelfAttention.relative_attention_bias", "blocks.{n}.pos_embedding.embedding"),
    ("encoder.block.{n}.layer.0.dropout", None),
    ("encoder.block.{n}.layer.1", None),  # UMT5LayerFF: norm, FFN, residual
    ("encoder.block.{n}.layer.1.layer_norm", "blocks.{n}.norm2"),
    ("encoder.block.{n}.layer.1.DenseReluDense", "blocks.{n}.ffn"),  # UMT5DenseGatedActDense
    ("encoder.block.{n}.layer.1.DenseReluDense.wi_0", "blocks.{n}.ffn.gate.0"),  # Linear(dim, dim_ffn)
    ("encoder.block.{n}.layer.1.DenseReluDense.act", "blocks.{n}.ffn.gate.1"),  # GELU (tanh)
    ("encoder.block.{n}.layer.1.DenseReluDense.wi_1", "blocks.{n}.ffn.fc1"),  # Linear(dim, dim_ffn)
    ("encoder.block.{n}.layer.1.DenseReluDense.wo", "blocks.{n}.ffn.fc2"),  # Linear(dim_ffn, dim)
    ("encoder.block.{n}.layer.1.DenseReluDense.dropout", None),
    ("encoder.block.{n}.layer.1.dropout", None),
    ("encoder.final_layer_norm", "norm"),
    ("encoder.dropout", None),
)
"""transformers ``UMT5EncoderModel`` name → official ``T5Encoder`` name (``wan/modules/t5.py``)."""

IMAGE_ENCODER_STAGE: Final = "image_encoder"
"""Stage prefix of every image-encoder module id."""

CLIP_VISION_TO_OFFICIAL: Final[tuple[tuple[str, str | None], ...]] = (
    ("", ""),  # CLIPVisionModel = VisionTransformer (the visual tower of XLMRobertaCLIP)
    ("embeddings", None),  # CLIPVisionEmbeddings: class-token concat and position add count on the root
    ("embeddings.class_embedding", "cls_embedding"),  # parameter [dim]; official [1, 1, dim]
    ("embeddings.patch_embedding", "patch_embedding"),  # Conv2d(3, dim, 14, stride 14, no bias)
    (
        "embeddings.position_embedding",
        "pos_embedding",
    ),  # Embedding(257, dim); official parameter [1, 257, dim]
    ("pre_layrnorm", "pre_norm"),  # LayerNorm
    ("encoder", None),  # CLIPEncoder
    ("encoder.layers", "transformer"),  # ModuleList; official nn.Sequential
    ("encoder.layers.{n}", "transformer.{n}"),  # CLIPEncoderLayer = AttentionBlock
    ("encoder.layers.{n}.layer_norm1", "transformer.{n}.norm1"),
    ("encoder.layers.{n}.self_attn", "transformer.{n}.attn"),  # CLIPAttention = SelfAttention
    ("encoder.layers.{n}.self_attn.q_proj", "transformer.{n}.attn.to_qkv"),  # the official fused
    ("encoder.layers.{n}.self_attn.k_proj", "transformer.{n}.attn.to_qkv"),  # Linear(dim, 3·dim) is
    ("encoder.layers.{n}.self_attn.v_proj", "transformer.{n}.attn.to_qkv"),  # these three together
    ("encoder.layers.{n}.self_attn.out_proj", "transformer.{n}.attn.proj"),
    ("encoder.layers.{n}.layer_norm2", "transformer.{n}.norm2"),
    ("encoder.layers.{n}.mlp", "transformer.{n}.mlp"),  # CLIPMLP = nn.Sequential
    ("encoder.layers.{n}.mlp.fc1", "transformer.{n}.mlp.0"),  # Linear(dim, 4·dim)
    ("encoder.layers.{n}.mlp.activation_fn", "transformer.{n}.mlp.1"),  # GELU (exact)
    ("encoder.layers.{n}.mlp.fc2", "transformer.{n}.mlp.2"),  # Linear(4·dim, dim)
    ("post_layernorm", "post_norm"),  # LayerNorm; runs on the pooled class token only
)
"""transformers ``CLIPVisionModel`` name → official ``VisionTransformer`` name (``wan/modules/clip.py``)."""

TEXT_ENCODER_NAMES: Final = NameTable(
    "UMT5_TO_OFFICIAL", TEXT_ENCODER_STAGE, UMT5_TO_OFFICIAL, "encoder.block"
)
"""The text encoder's table, compiled."""

IMAGE_ENCODER_NAMES: Final = NameTable(
    "CLIP_VISION_TO_OFFICIAL", IMAGE_ENCODER_STAGE, CLIP_VISION_TO_OFFICIAL, "encoder.layers"
)
"""The image encoder's table, compiled."""
