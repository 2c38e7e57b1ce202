"""Name a live Wan model's profiler ranges by the project's module ids.

:func:`annotate` wraps the ``forward`` of every module of a model (and ``encode``/``decode`` of a VAE
root) in ``torch.profiler.record_function(<module id>)`` — and an NVTX range of the same name when CUDA
is available, for Nsight Systems — so a trace carries ``diffusion.blocks.3.ffn.0`` instead of
``Linear``. Around an existing script::

    with annotate(pipe.transformer), annotate(pipe.vae), torch.profiler.profile(record_shapes=True) as p:
        video = pipe(prompt, num_frames=81).frames[0]

Module names are mapped onto official ids with the tables of :mod:`llm_perf_opt.reference.official_ids`:
diffusers' ``WanTransformer3DModel`` and ``AutoencoderKLWan``, transformers' ``UMT5EncoderModel`` and
``CLIPVisionModel``; the official classes (``WanModel``, ``WanVAE_``, ``T5Encoder``, ``VisionTransformer``
of Wan-Video/Wan2.1) already carry the official names and only get their stage prefix. A module the
table maps to no official id (diffusers' ``condition_embedder``, a ``Dropout``) gets no range: its work
counts on the nearest enclosing module, as the analytic model counts it. Several modules mapped to one id
(CLIP's ``q_proj``/``k_proj``/``v_proj`` = ``to_qkv``) each open a range of that id.

Leaving the ``with`` block (or :meth:`Annotation.remove`) restores every method.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final

import torch

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference.official_ids import (
    IMAGE_ENCODER_NAMES,
    IMAGE_ENCODER_STAGE,
    STAGE,
    TEXT_ENCODER_NAMES,
    TEXT_ENCODER_STAGE,
    VAE_STAGE,
    official_id,
    official_vae_id,
)

__all__ = ["Annotation", "annotate", "module_ids"]

_DIFFUSERS_NAMERS: Final[dict[str, Callable[[str], str | None]]] = {
    "WanTransformer3DModel": official_id,
    "AutoencoderKLWan": official_vae_id,
    "UMT5EncoderModel": TEXT_ENCODER_NAMES.official_id,
    "CLIPVisionModel": IMAGE_ENCODER_NAMES.official_id,
}
"""Class of a reference model's root → its name table."""
_OFFICIAL_STAGES: Final = {
    "WanModel": STAGE,
    "WanVAE_": VAE_STAGE,
    "T5Encoder": TEXT_ENCODER_STAGE,
    "VisionTransformer": IMAGE_ENCODER_STAGE,
}
"""Class of an official model's root → its stage prefix (names are already the official ones)."""
_VAE_METHODS: Final = ("encode", "decode")
"""Methods of a VAE root that the pipelines call instead of ``forward``."""


def _namer(model: torch.nn.Module) -> Callable[[str], str | None]:
    cls = type(model).__name__
    if cls in _DIFFUSERS_NAMERS:
        return _DIFFUSERS_NAMERS[cls]
    if cls in _OFFICIAL_STAGES:
        stage = _OFFICIAL_STAGES[cls]
        return lambda name: f"{stage}.{name}" if name else stage
    accepted = ", ".join([*_DIFFUSERS_NAMERS, *_OFFICIAL_STAGES])
    raise LlmPerfOptError(f"model: cannot name the modules of a {cls}; accepted classes: {accepted}")


def module_ids(model: torch.nn.Module) -> dict[str, str]:
    """Module name inside ``model`` → the official module id its range gets (unmapped names left out)."""
    namer = _namer(model)
    ids = {}
    for name, _module in model.named_modules():
        module_id = namer(name)
        if module_id is not None:
            ids[name] = module_id
    return ids


def _ranged(method: Callable[..., Any], name: str, nvtx: bool) -> Callable[..., Any]:
    """``method`` run inside a profiler range (and an NVTX range) called ``name``."""

    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with torch.profiler.record_function(name):
            if not nvtx:
                return method(*args, **kwargs)
            torch.cuda.nvtx.range_push(name)  # type: ignore[no-untyped-call]
            try:
                return method(*args, **kwargs)
            finally:
                torch.cuda.nvtx.range_pop()  # type: ignore[no-untyped-call]

    return run


class Annotation:
    """The wrapped methods of one model; a context manager that restores them on exit."""

    def __init__(self, model: torch.nn.Module, *, nvtx: bool | None = None) -> None:
        self.model = model
        self.ids = module_ids(model)
        use_nvtx = torch.cuda.is_available() if nvtx is None else nvtx
        self._wrapped: list[tuple[torch.nn.Module, str, bool]] = []
        modules = dict(model.named_modules())
        for name, module_id in self.ids.items():
            module = modules[name]
            methods = ["forward"]
            if not name and module_id == VAE_STAGE:
                methods = [m for m in _VAE_METHODS if hasattr(module, m)]
            for method in methods:
                had_own = method in vars(module)
                setattr(module, method, _ranged(getattr(module, method), module_id, use_nvtx))
                self._wrapped.append((module, method, had_own))

    def remove(self) -> None:
        """Restore every wrapped method (idempotent)."""
        while self._wrapped:
            module, method, had_own = self._wrapped.pop()
            wrapper = vars(module)[method]
            if had_own:
                setattr(module, method, wrapper.__wrapped__)
            else:
                delattr(module, method)

    def __enter__(self) -> Annotation:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.remove()


def annotate(model: torch.nn.Module, *, nvtx: bool | None = None) -> Annotation:
    """Wrap every module of ``model`` in a profiler range named by its official module id.

    ``nvtx`` (default: when CUDA is available) also opens NVTX ranges for Nsight Systems. Use as a
    context manager, or call :meth:`Annotation.remove` when done.
    """
    return Annotation(model, nvtx=nvtx)
