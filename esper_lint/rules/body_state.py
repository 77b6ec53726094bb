"""Rules about the state a mask_mod / score_mod body touches: ESP022 (side effects), ESP024 (one-element
captured tensors). Facts come from `analysis/side_effects.py` and `analysis/captured_tensors.py`."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from ..analysis import captured_tensors as captured
from ..analysis.function_references import passed_only_to
from ..analysis.mask_bodies import walk_body
from ..analysis.model import MASK_MOD, SCORE_MOD, MaskFunction, MaskUse, ModuleFacts
from ..analysis.side_effects import debugs_flex_attention, side_effects
from ..core.apis import FLEX_ATTENTION, FLEX_MODULE
from ..core.findings import Finding
from ..core.fixes import UNSAFE, Edit, Fix
from .base import where
from .mask_bodies import IMPORTS, TORCH, BodyRule, body_functions

_BOTH = frozenset({MASK_MOD, SCORE_MOD})
_CREATE_BLOCK_MASK = f"{FLEX_MODULE}.create_block_mask"


class SideEffectInMod(BodyRule):
    code = "ESP022"
    name = "side-effect-in-mod"
    roles = _BOTH
    summary = "A mask/score function that mutates captured state, prints or logs: torch runs it once per trace."
    what_it_does = (
        "Finds, in a mask_mod or score_mod: assignments to `global`/`nonlocal` names; item, slice or "
        "attribute assignment into an object the function does not own (a capture, a module name, `self`); "
        "mutating method calls on such an object (`.append()`, `.extend()`, `.clear()`, `.setdefault()`, "
        "in-place tensor methods like `.zero_()`; `.add()`/`.update()`/`.pop()` as statements); and `print()`, "
        "`breakpoint()`, `pdb.set_trace()` and `logging` calls. A list the function builds itself is its "
        "own: appending to it is fine. In a module that turns on FlexAttention's debug mode "
        "(`_FLEX_ATTENTION_DISABLE_COMPILE_DEBUG = True`), printing, breakpoints and logging in a score_mod "
        "are not reported: eager `flex_attention` then runs it in Python."
    )
    why_bad = (
        "Torch does not call the function once per element: `create_block_mask`/`create_mask` call it once "
        "under `vmap`, `flex_attention` traces a score_mod with dynamo. Measured on "
        f"{TORCH} (S=128): a `global` counter counts 1 call for the 16,384 elements of a mask (compiled "
        "`flex_attention`: 1 for 32,768 scores); `SEEN.append(q_idx)` stores one batched tensor, and a "
        "compiled `create_block_mask` fails with `BackendCompilerFailed`; in a score_mod, eager "
        "`flex_attention` raises `torch._dynamo.exc.Unsupported` for the counter (`Non-nullified side "
        "effect`), the append (`Unsafe side effect`), `print` and `logging`, and compiled it fails on the "
        "append and on item assignment into a captured tensor (`BackendCompilerFailed`)."
    )
    example = (
        IMPORTS
        + """
CALLS = 0

def causal(b, h, q_idx, kv_idx):
    global CALLS
    CALLS += 1
    return q_idx >= kv_idx

block_mask = create_block_mask(causal, None, None, 128, 128)
"""
    )
    use_instead = (
        IMPORTS
        + """
def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

block_mask = create_block_mask(causal, None, None, 128, 128)
"""
    )
    fix_safety = "No automatic fix: removing the side effect changes what the program does; only a person can decide."
    VALID = (
        IMPORTS
        + """
import functools
import operator

def combined(b, h, q_idx, kv_idx):
    parts = []  # a local list: the function's own
    parts.append(q_idx >= kv_idx)
    parts.append(q_idx - kv_idx < 64)
    return functools.reduce(operator.and_, parts)

create_block_mask(combined, None, None, 128, 128)
""",
        IMPORTS
        + """
BIAS = torch.zeros(8)

def bias(score, b, h, q_idx, kv_idx):
    return score + BIAS.add(1.0)[h]  # `.add()` returns a new tensor: no mutation

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=bias)
""",
    )
    INVALID = (
        example,
        IMPORTS
        + """
SEEN = []

def logged(score, b, h, q_idx, kv_idx):
    SEEN.append(q_idx)
    print("score_mod called")
    return score

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=logged)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        for fn, node in body_functions(use):
            for effect in side_effects(node, fn.module_ast, fn.outer_functions):
                if (
                    use.role == SCORE_MOD
                    and effect.debugging
                    and debugs_flex_attention(fn.module_ast, fn.positions.text)
                ):
                    continue  # FlexAttention's debug mode runs a score_mod eagerly: a print there is meant
                if use.role == SCORE_MOD:
                    consequence = (
                        "eager `flex_attention` refuses most side effects (`torch._dynamo.exc.Unsupported`), and "
                        "compiled it runs them once per trace, not per score, or fails to compile"
                    )
                else:
                    consequence = (
                        "`create_block_mask`/`create_mask` run the function once under vmap, not per element (a "
                        "counter counts 1, an appended value is one batched tensor), and a compiled "
                        "`create_block_mask` fails on a mutated list or dict"
                    )
                message = (
                    f"{use.role} {where(fn)} {effect.what}: {consequence}. Keep the function pure: compute the "
                    "state outside it."
                )
                yield self.body_finding(path, fn, effect.node, message)


class OneElementCapture(BodyRule):
    code = "ESP024"
    name = "one-element-capture"
    fix = "safe"
    roles = _BOTH
    summary = "A mask/score function reads a captured one-element tensor (`torch.tensor([x])`) meant as a scalar."
    what_it_does = (
        "Finds elementwise reads (`q_idx - kv_idx < offset`, `score + offset`) of a captured tensor bound, "
        "once, to `torch.tensor([x])`, `torch.as_tensor([x])`, `torch.ones(1)`/`zeros(1)`, "
        "`torch.full((1,), v)` or a one-element slice `t[i:i+1]`, `t[:1]`, `t[-1:]`. A 0-d tensor "
        "(`torch.tensor(x)`, `t[i]`) and reads such as `offset[0]` or `offset.item()` are fine."
    )
    why_bad = (
        "A tensor of shape (1,) is not a scalar: every value computed from it gets that dimension. "
        f"Measured on {TORCH} (S=128): `create_block_mask` raises `ValueError: too many values to unpack "
        "(expected 4)`, eager and compiled; `create_mask` returns a mask of shape (1, 1, 128, 128, 1); eager "
        "`flex_attention` with such a score_mod raises `RuntimeError: The size of tensor a (2) must match the "
        "size of tensor b (128)` (compiled, it happens to run). The same values as a 0-d tensor work "
        "everywhere."
    )
    example = (
        IMPORTS
        + """
def build(window: int, n: int):
    limit = torch.tensor([window])

    def sliding(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx < limit)

    return create_block_mask(sliding, None, None, n, n)
"""
    )
    use_instead = (
        IMPORTS
        + """
def build(window: int, n: int):
    limit = torch.tensor(window)

    def sliding(b, h, q_idx, kv_idx):
        return (q_idx >= kv_idx) & (q_idx - kv_idx < limit)

    return create_block_mask(sliding, None, None, n, n)
"""
    )
    fix_safety = (
        "`torch.tensor([x])` becomes `torch.tensor(x)` when `x` is a number literal. That changes the "
        "tensor's shape, so the fix is safe only when nothing can see the old shape except calls that fail "
        "with it: the tensor is a local of a function, every read of it is elementwise inside a mask/score "
        "function and flows straight into its result, and each such function is a lambda written in, or a "
        "nested def only passed to, `create_block_mask` (which raises on the old shape) or `flex_attention` "
        "(eager raises; compiled gives the same values). Otherwise the edit is an unsafe fix "
        "(`--unsafe-fixes`): other code, direct calls or `create_mask` would see a 0-d result where they saw "
        "shape (1,). Slices and the other forms have no automatic fix."
    )
    VALID = (
        IMPORTS
        + """
OFFSET = torch.tensor(16)  # 0-d: a scalar tensor
LENGTHS = torch.tensor([100, 60])

def padded(b, h, q_idx, kv_idx):
    return (q_idx - kv_idx < OFFSET) & (kv_idx < LENGTHS[b])

create_block_mask(padded, 2, None, 128, 128)
""",
        IMPORTS
        + """
LIMIT = torch.tensor([64])

def window(b, h, q_idx, kv_idx):
    return q_idx - kv_idx < LIMIT[0]  # indexed: a 0-d value

create_block_mask(window, None, None, 128, 128)
""",
    )
    INVALID = (
        example,
        IMPORTS
        + """
LENGTHS = torch.tensor([100, 60, 30])
LENGTH = LENGTHS[1:2]

def padding(score, b, h, q_idx, kv_idx):
    return torch.where(kv_idx < LENGTH, score, -float("inf"))

def attend(q, k, v):
    return flex_attention(q, k, v, score_mod=padding)
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        functions: dict[int, tuple[MaskFunction, str]] = {}
        for use in facts.uses:
            for fn, node in body_functions(use):
                functions.setdefault(id(node), (fn, use.role))
        reported: set[int] = set()  # one finding per captured binding: its fix removes it for every reader
        for fn, _ in functions.values():
            node = fn.ast_node
            for item in captured.one_element_captures(fn.module_ast, node, fn.outer_functions, fn.module_summary):
                statement = id(item.value)
                if statement in reported:
                    continue
                reported.add(statement)
                fix = _capture_fix(fn, item, functions, facts.uses)
                name = item.read.id
                message = (
                    f"{where(fn)} reads `{name}` = `{ast.unparse(item.value)}`, a tensor of shape (1,), not a "
                    "scalar: every value computed from it gets that dimension, so `create_block_mask` raises "
                    "`ValueError: too many values to unpack (expected 4)` (`create_mask` returns a 5-D mask, eager "
                    f"`flex_attention` a shape error). Make it 0-d: {_scalar_form(item.value)}"
                    + (" (fixable with `esper-lint --fix`)." if fix is not None and fix.safe else ".")
                )
                yield self.body_finding(path, fn, item.read, message, fix)


def _scalar_form(value: ast.expr) -> str:
    if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Slice):
        index = value.slice.lower if value.slice.lower is not None else ast.Constant(0)
        return f"`{ast.unparse(ast.Subscript(value.value, index, ast.Load()))}`"
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
        first = value.args[0] if value.args else None
        if isinstance(first, (ast.List, ast.Tuple)) and len(first.elts) == 1:
            return f"`{ast.unparse(value.func)}({ast.unparse(first.elts[0])})`"
        return f"`{ast.unparse(value.func)}(())` (shape `()`)" if value.func.attr != "full" else "shape `()`"
    return "a 0-d tensor"


def _accepted(use: MaskUse) -> bool:
    """Calls that fail on the one-element result (or, compiled `flex_attention`, give the same values)."""
    if use.via_helper is not None:
        return False
    return (use.role == MASK_MOD and use.api == _CREATE_BLOCK_MASK) or (
        use.role == SCORE_MOD and use.api == FLEX_ATTENTION
    )


def _capture_fix(
    fn: MaskFunction,
    item: captured.OneElementCapture,
    functions: dict[int, tuple[MaskFunction, str]],
    uses: list[MaskUse],
) -> Fix | None:
    display = item.display
    if not isinstance(display, ast.List) or "#" in fn.positions.segment(display):
        return None
    edit = Edit(fn.positions.span(display), fn.positions.segment(display.elts[0]))
    description = "`torch.tensor(x)`: a 0-d tensor"
    if _shape_unobservable(item, functions, uses):
        return Fix((edit,), description=description)
    return Fix((edit,), UNSAFE, description + " (other code may see the shape change)")


def _shape_unobservable(
    item: captured.OneElementCapture, functions: dict[int, tuple[MaskFunction, str]], uses: list[MaskUse]
) -> bool:
    """Only calls that fail on the shape (1,) can see it (see the rule's fix safety)."""
    scope = item.binding.scope
    statement = item.binding.statements[0] if item.binding.statements else None
    if isinstance(scope, ast.Module) or not isinstance(statement, ast.Assign):
        return False
    target = statement.targets[0]
    readers: dict[int, MaskFunction] = {}
    for reference in captured.references(scope, item.read.id):
        if reference is target:
            continue
        owner = next((f for f, _ in functions.values() if _in_body(f, reference)), None)
        if owner is None or not isinstance(reference.ctx, ast.Load):
            return False
        if not captured.reads_reach_result(owner.ast_node, reference):
            return False
        readers[id(owner.ast_node)] = owner
    return bool(readers) and all(passed_only_to(f, uses, _accepted) for f in readers.values())


def _in_body(fn: MaskFunction, node: ast.AST) -> bool:
    return any(n is node for n in walk_body(fn.ast_node))
