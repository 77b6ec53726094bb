"""The rule registry: every rule, by code. Codes are public interface and never reused."""

from __future__ import annotations

from .attention_options import DeprecatedReturnLse, UnknownKernelOption
from .base import Rule
from .block_mask_caching import BlockMaskPerForward
from .block_mask_sizes import CreateBlockMaskEager, MaskHeadsFromKv
from .block_mask_use import BlockMaskAdjust, BlockMaskFixedBatch, BlockMaskFixedLength, SlicedBlockMask
from .body_state import OneElementCapture, SideEffectInMod
from .body_values import MaskingInScoreMod, MaskOperatorPrecedence, MaskReturnsNonBool, PythonDataInMask
from .call_sites import (
    BlockMaskAsScoreMod,
    DeprecatedCompileFlag,
    FlexAttentionEager,
    MaskReadsBroadcastDim,
    UnusedBatchHeadDims,
)
from .mask_bodies import (
    CapturedScalarRecompiles,
    MaskArgsSwapped,
    MaskPythonControlFlow,
    ScoreModInPlace,
    ScoreModReturnsMask,
)
from .mask_functions import (
    LambdaMaskMod,
    MaskModCapturesLocals,
    MaskModCapturesSelf,
    MaskModLateBinding,
    NestedMaskMod,
)

ALL_RULES: tuple[type[Rule], ...] = (
    NestedMaskMod,
    LambdaMaskMod,
    MaskModCapturesSelf,
    MaskModLateBinding,
    BlockMaskPerForward,
    MaskModCapturesLocals,
    MaskReadsBroadcastDim,
    MaskPythonControlFlow,
    UnusedBatchHeadDims,
    DeprecatedCompileFlag,
    ScoreModInPlace,
    ScoreModReturnsMask,
    BlockMaskAsScoreMod,
    MaskArgsSwapped,
    CapturedScalarRecompiles,
    FlexAttentionEager,
    MaskOperatorPrecedence,
    BlockMaskAdjust,
    MaskHeadsFromKv,
    SlicedBlockMask,
    PythonDataInMask,
    SideEffectInMod,
    UnknownKernelOption,
    OneElementCapture,
    MaskReturnsNonBool,
    MaskingInScoreMod,
    DeprecatedReturnLse,
    BlockMaskFixedBatch,
    BlockMaskFixedLength,
    CreateBlockMaskEager,
)
RULES_BY_CODE: dict[str, type[Rule]] = {r.code: r for r in ALL_RULES}
DEFAULT_SELECT: frozenset[str] = frozenset(r.code for r in ALL_RULES if r.default_enabled)


def get_rule(code_or_name: str) -> type[Rule] | None:
    key = code_or_name.strip()
    if key.upper() in RULES_BY_CODE:
        return RULES_BY_CODE[key.upper()]
    return next((r for r in ALL_RULES if r.name == key.lower()), None)


__all__ = ["ALL_RULES", "DEFAULT_SELECT", "RULES_BY_CODE", "Rule", "get_rule"]
