"""Text-edit fixes: a finding carries the edits that fix it; `--fix` applies them with the hoist's guarantees.

A rule computes its edits from the facts the analysis recorded (spans of the call, its arguments, ...), so
checking and fixing agree by construction. An `Edit` replaces the text of a `Span` (1-based lines, 1-based
character columns, end exclusive, as every finding's span) with new text; an empty span inserts. A `Fix` is
the edits of one finding, applied all together or not at all. `safe` fixes keep what the program does
exactly; the others ("unsafe", ruff's meaning) may change behaviour and are applied only with
`--unsafe-fixes`.

`apply_edit_fixes` applies every applicable fix whose edits overlap no other chosen fix, then checks the
result as the hoist does: it must parse and compile, and linting it again must find exactly the findings
that were there minus the fixed ones. Text outside the edited spans is kept byte for byte (the file is
decoded and re-encoded with its own encoding; line endings are untouched). It repeats until nothing is
left to apply, so running it twice changes nothing the second time.
"""

from __future__ import annotations

import ast
import io
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.decoding import declared_encoding
from ..core.fixes import Edit

if TYPE_CHECKING:
    from ..config import Config
    from ..core.findings import Finding
    from ..engine import Analysis

_MAX_ROUNDS = 5  # fixes dropped for overlapping are applied in a later round; real files need one or two


class EditFailed(Exception):
    """The edited module failed a check: the file is left as it was."""


class EditOutcome:
    __slots__ = ("analysis", "findings", "fixed", "original", "source")

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.fixed: list[Finding] = []
        self.findings: list[Finding] = []  # what the fast analysis finds in `source`
        # `analyze_bytes(source)` itself when the last round analysed `source` and found nothing to apply
        # (the usual end), so the caller need not analyse the file again; None when it must.
        self.analysis: Analysis | None = None
        self.original: Analysis | None = None  # the first round's analysis: of the bytes as given


def applicable(finding: Finding, unsafe: bool) -> bool:
    return finding.edits is not None and (finding.edits.safe or unsafe)


def choose(findings: Sequence[Finding], unsafe: bool) -> list[Finding]:
    """The findings whose fixes apply, in order, dropping any whose edits overlap an earlier choice."""
    chosen: list[Finding] = []
    taken: list[tuple[tuple[int, int], tuple[int, int]]] = []
    candidates = [f for f in findings if applicable(f, unsafe)]
    for finding in sorted(candidates, key=lambda f: f.edits.start if f.edits else (0, 0)):
        assert finding.edits is not None
        start, end = finding.edits.start, finding.edits.end
        # Overlapping spans, or two insertions at one point (their order would be arbitrary).
        if any((start < t_end and t_start < end) or start == t_start for t_start, t_end in taken):
            continue
        chosen.append(finding)
        taken.append((start, end))
    return chosen


def apply_to_text(text: str, edits: Sequence[Edit]) -> str:
    """`text` with the (non-overlapping) edits applied; lines split as Python splits them."""
    lines = io.StringIO(text, newline="").readlines()
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(line: int, column: int) -> int:
        if line - 1 >= len(lines):
            return len(text)
        return starts[line - 1] + column - 1

    out = text
    for edit in sorted(edits, key=lambda e: (e.span.line, e.span.column), reverse=True):
        begin = offset(edit.span.line, edit.span.column)
        stop = offset(edit.span.end_line, edit.span.end_column)
        out = out[:begin] + edit.replacement + out[stop:]
    return out


def apply_edit_fixes(
    source: bytes, path: str, config: Config, unsafe: bool = False, analysis: Analysis | None = None
) -> EditOutcome:
    """Apply the text-edit fixes of every finding (the unsafe ones too when `unsafe`), verified; `analysis`
    is the caller's analysis of `source`, if it has one.

    Raises EditFailed when the result would not compile or would change other findings.
    """
    from ..core.decoding import SourceError
    from ..engine import analyze_bytes

    encoding = declared_encoding(source)
    outcome = EditOutcome(source)
    outcome.original = analysis
    # `analysis` is always of `outcome.source`: after a round that edited, the verification's.
    for _ in range(_MAX_ROUNDS):
        if analysis is None:
            try:
                analysis = analyze_bytes(outcome.source, path, config)  # the one analysis checking runs
            except SourceError:
                break  # the caller's own analysis reports why the file cannot be checked
            outcome.original = analysis
        try:
            findings = analysis.findings
            outcome.findings = findings
            chosen = choose(findings, unsafe)
            if not chosen:
                outcome.analysis = analysis
                break
            new_text = apply_to_text(analysis.text, [e for f in chosen if f.edits for e in f.edits.edits])
            verified = verify_text(new_text, path, config, findings, chosen)
            outcome.findings = verified.findings
            new_source = new_text.encode(encoding)
        except EditFailed:
            raise
        except Exception as exc:  # a bug in a fix must not stop the run or damage the file
            raise EditFailed(f"{type(exc).__name__}: {exc}") from exc
        outcome.fixed.extend(chosen)
        outcome.source = new_source
        analysis = verified
    return outcome


def verify_text(new_text: str, path: str, config: Config, before: list[Finding], fixed: list[Finding]) -> Analysis:
    """Compile and re-lint the edited text; its analysis, as `analyze_bytes` would make it (the next round
    starts from it)."""
    from ..engine import Analysis, analyze_fast, offer_unsafe_fixes

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(new_text, filename=path)
            compile(tree, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise EditFailed(f"the fix would produce code that does not compile ({exc})") from None
    after = analyze_fast(tree, new_text, path, config)
    offer_unsafe_fixes(after, config)
    expected = Counter(f.code for f in before)
    expected.subtract(f.code for f in fixed)
    if Counter(f.code for f in after) != +expected:
        raise EditFailed("the fix would produce code that changes other findings when linted again")
    return Analysis(new_text, tree, after)
