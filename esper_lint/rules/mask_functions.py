"""Rules about the function objects passed as FlexAttention mask functions."""

from __future__ import annotations

from collections.abc import Iterator

from ..analysis.model import CaptureKind, FunctionKind, MaskFunction, MaskUse
from ..core.apis import keeps_mask_function
from ..core.findings import Finding
from .base import Rule, names, where

_IMPORT = "from torch.nn.attention.flex_attention import create_block_mask\n"


def _is_capture_free_nested(fn: MaskFunction) -> bool:
    return fn.nested and not fn.captures and not fn.default_refs


def _hoistable_by_name(use: MaskUse, kind: FunctionKind) -> Iterator[tuple[MaskFunction, str, list[str]]]:
    """The capture-free nested functions of `kind` this use may pass, one per name, with how to name them
    and why they cannot be hoisted: a function defined in both branches of an `if` is one finding at the
    use (one `# noqa` for one problem), naming each definition."""
    groups: dict[object, list[MaskFunction]] = {}
    for fn in use.direct_functions:
        if fn.kind is kind and _is_capture_free_nested(fn):
            key = (fn.name, fn.enclosing) if fn.name != "<lambda>" else id(fn)
            group = groups.setdefault(key, [])
            if not any(f is fn for f in group):
                group.append(fn)
    for group in groups.values():
        first = group[0]
        blockers = list(dict.fromkeys(r for fn in group for r in fn.hoist_blockers))
        if len(group) == 1:
            yield first, where(first, use), blockers
        else:
            lines = ", ".join(str(fn.span.line) for fn in group)
            yield first, f"`{first.name}` (lines {lines} in `{first.enclosing}`)", blockers


def _kept(use: MaskUse) -> str:
    """What happens to each new function object, in the words of the API that receives it."""
    if keeps_mask_function(use.api):
        return "and the BlockMask keeps each copy as `mask_mod`"
    return "a new function object each time for a mask that never changes"


class NestedMaskMod(Rule):
    code = "ESP001"
    name = "nested-mask-mod"
    fix = "safe"
    summary = "A mask function defined inside a function is re-created on every call and kept by the BlockMask."
    what_it_does = (
        "Finds a `def` inside a function or method that captures nothing from the enclosing function and "
        "is passed as the mask function of `create_block_mask`, `create_mask`, `BlockMask.from_kv_blocks` "
        "(directly, through a variable, or through `and_masks`/`or_masks`)."
    )
    why_bad = (
        "Each call of the enclosing function creates a new function object. The returned BlockMask keeps "
        "it (`block_mask.mask_mod is causal`), so every cached mask holds its own copy, and caches or "
        "compiled code keyed on the function see a different object each time. A function that captures "
        "nothing gains nothing from being nested: define it once at module level."
    )
    example = (
        _IMPORT
        + """
class Attention(nn.Module):
    def _block_mask(self, seq_len):
        def causal(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx

        return create_block_mask(causal, None, None, seq_len, seq_len)
"""
    )
    use_instead = (
        _IMPORT
        + """
def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


class Attention(nn.Module):
    def _block_mask(self, seq_len):
        return create_block_mask(causal, None, None, seq_len, seq_len)
"""
    )
    fix_safety = (
        "Safe. `--fix` moves the function, with its decorators, docstring, annotations and comments, to "
        "module level just before the top-level statement that contains it, and renames it if the module "
        "already uses the name (or would be collected by a test runner). No fix is offered when it could "
        "change what the program does: a decorator, a default other than an immutable constant, or an "
        "annotation that calls something (they would run once at import instead of per call); a use of "
        "the function other than calling it or passing it as a mask (all calls would share one object); "
        "a use that can run before the definition; `locals()`, `eval`, frames or `globals()` that see the "
        "name; `nonlocal`/`global`; a name bound more than once. The message says which; docs/fix.md "
        "lists every condition."
    )
    VALID = (
        _IMPORT
        + """
def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

def build(n):
    return create_block_mask(causal, None, None, n, n)
""",
        """
def create_block_mask(fn, *args):  # a local function with the same name is not torch's
    return fn

def build(n):
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx
    return create_block_mask(causal, None, None, n, n)
""",
        """
from my_lib.attention import create_block_mask  # another library's function

def build(n):
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx
    return create_block_mask(causal, None, None, n, n)
""",
    )
    INVALID = (
        _IMPORT
        + """
def build(n):
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx
    return create_block_mask(causal, None, None, n, n)
""",
        """
import torch

class M:
    def mask(self, n):
        def causal(b, h, q_idx, kv_idx):
            return q_idx >= kv_idx
        cbm = torch.compile(torch.nn.attention.flex_attention.create_block_mask)
        return cbm(causal, None, None, n, n)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        for fn, label, blockers in _hoistable_by_name(use, FunctionKind.DEF):
            if blockers:
                advice = f"Move it to module level by hand: no automatic fix because {'; '.join(blockers)}."
            else:
                advice = "Move it to module level (fixable with `esper-lint --fix`)."
            yield self.finding(
                path,
                use,
                f"Mask function {label} captures nothing but is re-created on every call, {_kept(use)}. {advice}",
                fixable=not blockers,
                target=fn,
            )


class LambdaMaskMod(Rule):
    code = "ESP002"
    name = "lambda-mask-mod"
    fix = "safe"
    summary = "A lambda mask function inside a function is re-created on every call and kept by the BlockMask."
    what_it_does = (
        "Finds a `lambda` inside a function, passed inline or through a local variable as a FlexAttention "
        "mask function, that captures nothing from the enclosing function."
    )
    why_bad = (
        "Like a nested `def` (ESP001), the lambda is a new object on every call and the BlockMask keeps "
        "it as `mask_mod`. A lambda also has no name in tracebacks, profiles and compiled-graph dumps."
    )
    example = (
        _IMPORT
        + """
def build(n):
    return create_block_mask(lambda b, h, q, kv: q >= kv, None, None, n, n)
"""
    )
    use_instead = (
        _IMPORT
        + """
def causal_mask(b, h, q, kv):
    return q >= kv


def build(n):
    return create_block_mask(causal_mask, None, None, n, n)
"""
    )
    fix_safety = (
        "Safe. `--fix` turns the lambda into a module-level `def` with a generated, readable name and "
        "passes that name instead. Not offered under the same conditions as ESP001 (a default other than "
        "an immutable constant, the lambda used other than by calling it or passing it as a mask, dynamic "
        "access to the name, the variable bound more than once); the message says which."
    )
    VALID = (
        _IMPORT
        + """
causal = lambda b, h, q, kv: q >= kv  # module level: created once

def build(n):
    return create_block_mask(causal, None, None, n, n)
""",
    )
    INVALID = (
        _IMPORT
        + """
def build(n):
    return create_block_mask(lambda b, h, q, kv: q >= kv, None, None, n, n)
""",
        """
from torch.nn.attention import flex_attention as fa

def build(n):
    mask = lambda b, h, q, kv: q >= kv
    return fa.create_block_mask(mask, None, None, n, n)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        for fn, label, blockers in _hoistable_by_name(use, FunctionKind.LAMBDA):
            if blockers:
                advice = f"Define it at module level by hand: no automatic fix because {'; '.join(blockers)}."
            else:
                advice = "Define it once at module level (fixable with `esper-lint --fix`)."
            yield self.finding(
                path,
                use,
                f"Mask function {label} is a new lambda on every call, {_kept(use)}. {advice}",
                fixable=not blockers,
                target=fn,
            )


class MaskModCapturesSelf(Rule):
    code = "ESP003"
    name = "mask-mod-captures-self"
    summary = "A mask closure that captures `self`/`cls` ties the module to its own cached BlockMask."
    what_it_does = (
        "Finds a mask function defined inside a method that reads the method's first parameter "
        "(`self`, `cls`, whatever it is called)."
    )
    why_bad = (
        "The BlockMask keeps the closure as `mask_mod`, and the closure keeps `self`. When the module "
        "caches its BlockMask (an LRU dict on `self`), module -> cache -> BlockMask -> closure -> module "
        "is a reference cycle: `del model` frees nothing, weights included, until the cyclic garbage "
        "collector runs."
    )
    example = (
        _IMPORT
        + """
class SlidingWindow(nn.Module):
    def _mask(self, n):
        def window(b, h, q, kv):
            return (q - kv).abs() <= self.window
        return create_block_mask(window, None, None, n, n)
"""
    )
    use_instead = (
        _IMPORT
        + """
def sliding_window(window):
    def mask(b, h, q, kv):
        return (q - kv).abs() <= window
    return mask


class SlidingWindow(nn.Module):
    def _mask(self, n):
        return create_block_mask(sliding_window(self.window), None, None, n, n)
"""
    )
    fix_safety = "No automatic fix: which attributes to copy out of `self` is a design decision."
    VALID = (
        _IMPORT
        + """
class M:
    def _mask(self, n):
        window = self.window
        return create_block_mask(make_window_mask(window), None, None, n, n)
""",
        _IMPORT
        + """
class M:
    @staticmethod
    def _mask(n):
        def causal(b, h, q, kv):
            return q >= kv + n * 0
        return create_block_mask(causal, None, None, 8, 8)
""",
    )
    INVALID = (
        _IMPORT
        + """
class M:
    def _mask(self, n):
        def window(b, h, q, kv):
            return (q - kv).abs() <= self.window
        return create_block_mask(window, None, None, n, n)
""",
        _IMPORT
        + """
class M:
    @classmethod
    def _mask(klass, n):
        return create_block_mask(lambda b, h, q, kv: q - kv < klass.W, None, None, n, n)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        if not keeps_mask_function(use.api):
            return  # `create_mask` evaluates the closure once and keeps nothing
        for fn in use.direct_functions:
            captured = fn.captures_of(CaptureKind.SELF)
            if not captured:
                continue
            yield self.finding(
                path,
                use,
                f"Mask function {where(fn, use)} captures {names([c.name for c in captured])}: the BlockMask keeps "
                "the closure, so a mask cached on the module forms a reference cycle and the module's memory "
                "is freed only by the cyclic GC. Pass the values it needs to a module-level mask factory.",
                target=fn,
            )


class MaskModLateBinding(Rule):
    code = "ESP004"
    name = "mask-mod-late-binding"
    summary = "A mask closure reads a loop variable: the mask runs later with the loop's last value."
    what_it_does = (
        "Finds a mask function created inside a `for`/`while` loop or a comprehension that reads a "
        "variable the loop rebinds."
    )
    why_bad = (
        "`create_block_mask` evaluates the closure immediately, so the block structure uses the value of "
        "the current iteration. But the BlockMask keeps the closure as `mask_mod`, and `flex_attention` "
        "calls it again later for partial blocks, when the variable holds the loop's last value. The "
        "attention output is then silently wrong for every mask but the last."
    )
    example = (
        _IMPORT
        + """
masks = []
for window in (64, 256, 1024):
    def local(b, h, q, kv):
        return q - kv < window
    masks.append(create_block_mask(local, None, None, n, n))
"""
    )
    use_instead = (
        _IMPORT
        + """
def local_window(window):
    def local(b, h, q, kv):
        return q - kv < window
    return local


masks = [create_block_mask(local_window(w), None, None, n, n) for w in (64, 256, 1024)]
"""
    )
    fix_safety = (
        "No automatic fix: binding the value with a default argument (`window=window`) changes the "
        "function's signature, and a factory is a design choice."
    )
    VALID = (
        _IMPORT
        + """
def build(windows, n):
    masks = []
    for w in windows:
        masks.append(create_block_mask(local_window(w), None, None, n, n))
    return masks
""",
        _IMPORT
        + """
def build(windows, n):
    for w in windows:
        pass
    def last(b, h, q, kv):  # created after the loop: reads the final value on purpose
        return q - kv < w
    return create_block_mask(last, None, None, n, n)
""",
        """
from torch.nn.attention.flex_attention import create_mask

def dense(windows, n):  # create_mask evaluates the closure at once and keeps nothing
    return [create_mask(lambda b, h, q, kv: q - kv < w, None, None, n, n) for w in windows]
""",
    )
    INVALID = (
        _IMPORT
        + """
def build(windows, n):
    masks = []
    for w in windows:
        def local(b, h, q, kv):
            return q - kv < w
        masks.append(create_block_mask(local, None, None, n, n))
    return masks
""",
        _IMPORT
        + """
def build(windows, n):
    return [create_block_mask(lambda b, h, q, kv: q - kv < w, None, None, n, n) for w in windows]
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        if not keeps_mask_function(use.api):
            return  # `create_mask` evaluates the closure once and keeps nothing
        for fn in use.direct_functions:
            captured = fn.captures_of(CaptureKind.LOOP)
            if not captured:
                continue
            vars_ = names([c.name for c in captured])
            yield self.finding(
                path,
                use,
                f"Mask function {where(fn, use)} reads loop variable {vars_}: the block structure uses this "
                "iteration's value, but `mask_mod` runs later with the loop's last value, so attention "
                f"output is wrong once the BlockMask outlives the iteration. Bind it per iteration with a "
                f"default argument ({captured[0].name}={captured[0].name}) or a factory function.",
                target=fn,
            )


class MaskModCapturesLocals(Rule):
    code = "ESP006"
    name = "mask-mod-captures-locals"
    default_enabled = False
    summary = "A mask closure keeps enclosing locals (e.g. document ids) alive as long as its BlockMask."
    what_it_does = (
        "Finds a mask function that captures locals of an enclosing function other than `self` and loop "
        "variables, or binds them through default arguments."
    )
    why_bad = (
        "This is the documented FlexAttention pattern for per-batch masks (document ids, lengths), so it "
        "is off by default. Opt in to audit lifetimes: everything captured lives as long as the BlockMask "
        "does, which matters when masks are cached across batches."
    )
    example = (
        _IMPORT
        + """
def doc_block_mask(document_ids):
    def same_doc(b, h, q, kv):
        return document_ids[q] == document_ids[kv]
    return create_block_mask(same_doc, None, None, len(document_ids), len(document_ids))
"""
    )
    use_instead = "# Intended per-batch masks are fine: do not cache them beyond the batch, or suppress:\n" + (
        "create_block_mask(same_doc, None, None, n, n)  # noqa: ESP006\n"
    )
    fix_safety = "No automatic fix: the capture is usually intended."
    VALID = (
        _IMPORT
        + """
def build(n):
    def causal(b, h, q, kv):
        return q >= kv
    return create_block_mask(causal, None, None, n, n)
""",
    )
    INVALID = (
        _IMPORT
        + """
def doc_block_mask(document_ids, n):
    def same_doc(b, h, q, kv):
        return document_ids[q] == document_ids[kv]
    return create_block_mask(same_doc, None, None, n, n)
""",
    )

    def check(self, path: str, use: MaskUse) -> Iterator[Finding]:
        if not keeps_mask_function(use.api):
            return  # `create_mask` evaluates the closure once and keeps nothing
        for fn in use.direct_functions:
            captured = [c.name for c in fn.captures_of(CaptureKind.LOCAL)]
            captured += [n for n in fn.default_refs if n not in captured]
            if not captured:
                continue
            yield self.finding(
                path,
                use,
                f"Mask function {where(fn, use)} keeps local {names(captured)} alive for as long as the "
                "BlockMask exists. Intended for per-batch masks; make sure such masks are not cached "
                "beyond the data they describe.",
                target=fn,
            )
