"""Rules about the options a `flex_attention` call is given: `kernel_options` keys and the deprecated `return_lse`."""

from __future__ import annotations

from collections.abc import Iterator

from ..analysis.flow_model import KernelOptions, LseRequest, OptionKey
from ..analysis.model import ModuleFacts
from ..core.findings import Finding
from ..core.fixes import Edit, Fix, insert_at
from ..core.flex_kernel_options import BACKENDS, FLEX_KERNEL_OPTIONS, is_known, nearest, split_prefix
from .base import Rule
from .block_mask_use import call_flow

_HEADER = "from torch.nn.attention.flex_attention import flex_attention\n"
_AUX_HEADER = "from torch.nn.attention.flex_attention import AuxRequest, flex_attention\n"


def _falsy(key: OptionKey) -> bool:
    """A literal `False` / `0` / `None`: torch only refuses a true `FORCE_USE_FLEX_ATTENTION` with `BACKEND`."""
    value = key.value
    return value is not None and hasattr(value, "value") and not getattr(value, "value", True)


class UnknownKernelOption(Rule):
    code = "ESP023"
    name = "unknown-kernel-option"
    summary = "A `kernel_options` key torch's `FlexKernelOptions` does not define, or options torch refuses together."
    what_it_does = (
        "Checks the literal keys of the `kernel_options` a `flex_attention` call receives, or that "
        "`functools.partial(flex_attention, kernel_options=...)` binds (a dict display, `dict(...)`, or a "
        "variable bound to one, with keys added later by `opts[...] = ...`/`update`/`setdefault`), against "
        "torch 2.13's `FlexKernelOptions`: "
        + ", ".join(f"`{k}`" for k in FLEX_KERNEL_OPTIONS)
        + " (each also with a `fwd_`/`bwd_` prefix), plus the few keys its compiler reads without declaring "
        "them. Also finds `BACKEND` next to a true `FORCE_USE_FLEX_ATTENTION`, and a literal `BACKEND` value "
        f"other than {', '.join(f'`{b}`' for b in BACKENDS)}."
    )
    why_bad = (
        "torch checks neither the keys' spelling nor their existence: measured on torch 2.13.0 CPU, "
        '`{"BLOCK_m": 64}`, `{"num_warp": 2}` and `{"PRESCALE_QK ": True}` raise nothing, warn nothing and '
        "leave the output bit-identical to passing no options, eager and compiled, so the tuning silently "
        'never happens (compiled, the correctly spelled `{"PRESCALE_QK": True}` does change the output). '
        "`BACKEND` with `FORCE_USE_FLEX_ATTENTION=True` raises `RuntimeError: BACKEND cannot be combined "
        "with legacy FORCE_USE_FLEX_ATTENTION`, and an unknown `BACKEND` value `ValueError: Invalid BACKEND "
        "value`, only when the call runs (pytorch#158741, #133254)."
    )
    example = (
        _HEADER
        + """
def attend(q, k, v, block_mask):
    return flex_attention(q, k, v, block_mask=block_mask, kernel_options={"BLOCK_m": 64, "num_warp": 4})
"""
    )
    use_instead = (
        _HEADER
        + """
def attend(q, k, v, block_mask):
    return flex_attention(q, k, v, block_mask=block_mask, kernel_options={"BLOCK_M": 64, "num_warps": 4})
"""
    )
    fix_safety = (
        "No automatic fix: correcting a key turns a tuning on, which changes how (and whether) the kernel "
        "compiles and its rounding; the message names the nearest valid key."
    )
    VALID = (
        use_instead,
        _HEADER
        + """
OPTIONS = dict(fwd_BLOCK_M=64, bwd_BLOCK_N1=32, PRESCALE_QK=True, BACKEND="TRITON")

def attend(q, k, v):
    return flex_attention(q, k, v, kernel_options=OPTIONS)
""",
        """
from mylib import flex_attention  # not torch's

def attend(q, k, v):
    return flex_attention(q, k, v, kernel_options={"BLOCK_m": 64})
""",
    )
    INVALID = (
        example,
        _HEADER
        + """
def attend(q, k, v):
    options = {"BACKEND": "TRITON"}
    options["FORCE_USE_FLEX_ATTENTION"] = True
    return flex_attention(q, k, v, kernel_options=options)
""",
        _HEADER
        + """
def attend(q, k, v):
    return flex_attention(q, k, v, kernel_options=dict(PRESCALE_QK=True, fwd_BLOCK_m=32))
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        for options in call_flow(facts).kernel_options:
            yield from self._unknown(path, options)
            yield from self._refused(path, options)

    def _unknown(self, path: str, options: KernelOptions) -> Iterator[Finding]:
        for key in options.keys:
            if is_known(key.name):
                continue
            meant = nearest(key.name)
            advice = f"Did you mean `{meant}`?" if meant else "Use a key of torch's `FlexKernelOptions`."
            yield self.finding_at(
                path,
                key.span,
                f"`{key.name}` is not a kernel option torch knows: flex_attention ignores it without a "
                f"warning, so this tuning never happens. {advice}",
            )

    def _refused(self, path: str, options: KernelOptions) -> Iterator[Finding]:
        by_name = {split_prefix(k.name): k for k in options.keys}
        backend = by_name.get(("", "BACKEND"))
        force = by_name.get(("", "FORCE_USE_FLEX_ATTENTION"))
        if backend is not None and force is not None and not _falsy(force):
            yield self.finding_at(
                path,
                force.span,
                "`BACKEND` and `FORCE_USE_FLEX_ATTENTION` cannot be combined: flex_attention raises "
                "`RuntimeError: BACKEND cannot be combined with legacy FORCE_USE_FLEX_ATTENTION` when it runs. "
                "Drop `FORCE_USE_FLEX_ATTENTION` and choose the kernel with `BACKEND`.",
            )
        value = getattr(backend.value, "value", None) if backend is not None else None
        if backend is not None and isinstance(value, str) and value not in BACKENDS:
            yield self.finding_at(
                path,
                backend.span,
                f"`BACKEND={value!r}` is not a backend torch knows: flex_attention raises `ValueError: Invalid "
                f"BACKEND value` when it runs. Use one of {', '.join(repr(b) for b in BACKENDS)}.",
            )


class DeprecatedReturnLse(Rule):
    code = "ESP027"
    name = "deprecated-return-lse"
    fix = "safe"
    summary = "`flex_attention(..., return_lse=...)` is deprecated; use `return_aux=AuxRequest(lse=True)`."
    what_it_does = (
        "Finds `flex_attention` calls given `return_lse`, by keyword or by position, also through a "
        "module-level function that forwards its `**kwargs` to `flex_attention`."
    )
    why_bad = (
        'Measured on torch 2.13.0 CPU: `return_lse=True` emits a FutureWarning ("return_lse is deprecated '
        'and will be removed in v2.10. Please use return_aux=AuxRequest(lse=True) instead."); once it is '
        "removed the call fails with a TypeError. `return_aux=AuxRequest(lse=True)` returns the same output and "
        "the same log-sum-exp (bit for bit) in an `AuxOutput`. Passing `return_lse=True` with `return_aux` "
        "raises `ValueError: Cannot specify both return_lse and return_aux`."
    )
    example = (
        _HEADER
        + """
def attend(q, k, v, block_mask):
    out, lse = flex_attention(q, k, v, block_mask=block_mask, return_lse=True)
    return out, lse
"""
    )
    use_instead = (
        _AUX_HEADER
        + """
def attend(q, k, v, block_mask):
    out, lse = flex_attention(q, k, v, block_mask=block_mask, return_aux=AuxRequest(lse=True))
    lse = lse.lse
    return out, lse
"""
    )
    fix_safety = (
        "Safe: `--fix` rewrites `out, lse = flex_attention(..., return_lse=True)` (alone on its lines) to pass "
        "`return_aux=AuxRequest(lse=True)` and adds `lse = lse.lse` after it, so both names hold what they held "
        "(no new name is bound). `AuxRequest` is written only where it names torch's class at the call: "
        "already imported there, as `<module>.AuxRequest` when the call is `<module>.flex_attention`, or added "
        "to a module-level `from torch.nn.attention.flex_attention import ...` that precedes the call when the "
        "file spells `AuxRequest` nowhere else (not in a notebook, whose fixes stay in the finding's cell). "
        "`return_lse=False` (the default) is removed. Anything else "
        "(the result kept whole, a variable flag, `return_lse` by position) is reported without a fix."
    )
    VALID = (
        use_instead,
        """
from flash_attn import flex_attention  # another library's function of the same name

def attend(q, k, v):
    return flex_attention(q, k, v, return_lse=True)
""",
    )
    INVALID = (
        example,
        "import torch.nn.attention.flex_attention as fa\n"
        + """
def attend(q, k, v, want_lse):
    return fa.flex_attention(q, k, v, return_lse=want_lse)
""",
        _AUX_HEADER
        + """
def attend(q, k, v):
    return flex_attention(q, k, v, return_lse=False, return_aux=AuxRequest(max_scores=True))
""",
    )

    def check_module(self, path: str, facts: ModuleFacts) -> Iterator[Finding]:
        for request in call_flow(facts).lse_requests:
            span = request.keyword_span or request.span
            # A notebook's fix may change only the cells with a finding: not an import in another cell.
            in_notebook = path.endswith(".ipynb") and request.import_at is not None
            fix = None if in_notebook else self._fix(request)
            advice = "fixable with `esper-lint --fix`" if fix else "change it by hand"
            if request.value is False:
                message = (
                    "`return_lse=False` is the default and `return_lse` is deprecated (torch will remove it, "
                    f"and this call will then fail with TypeError): drop it ({advice})."
                )
            elif request.with_return_aux:
                message = (
                    "`return_lse` together with `return_aux` raises `ValueError: Cannot specify both return_lse "
                    "and return_aux` when true, and is deprecated anyway: drop it and request "
                    "`AuxRequest(lse=True)` in `return_aux`."
                )
            else:
                through = f" (through `{request.via}`'s `**kwargs`)" if request.via else ""
                message = (
                    f"`return_lse` is deprecated{through}: torch 2.13 warns (FutureWarning) and will remove it, "
                    "after which this call fails. Pass `return_aux=AuxRequest(lse=True)` and read `.lse` from the "
                    f"second result ({advice})."
                )
            yield self.finding_at(path, span, message, fix)

    @staticmethod
    def _fix(request: LseRequest) -> Fix | None:
        if request.value is False and request.removal_span is not None:
            return Fix((Edit(request.removal_span, ""),), description="drop `return_lse=False`")
        if (
            request.keyword_span is None
            or request.value is not True
            or request.with_return_aux
            or request.unpacked_lse is None
            or request.aux_request is None
            or request.line_end is None
        ):
            return None
        lse = request.unpacked_lse
        line, column = request.line_end
        edits = [
            Edit(request.keyword_span, f"return_aux={request.aux_request}(lse=True)"),
            insert_at(line, column + 1, f"{request.line_ending}{request.indent}{lse} = {lse}.lse"),
        ]
        if request.import_at is not None:
            edits.insert(0, insert_at(request.import_at[0], request.import_at[1] + 1, "AuxRequest, "))
        return Fix(tuple(edits), description="pass `return_aux=AuxRequest(lse=True)` and read `.lse`")
