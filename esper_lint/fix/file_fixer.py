"""One file's bytes to its fixed bytes: text-edit fixes (edits.py), then hoists (hoist.py), each verified by
analysing the result again; `fix_file` also writes it (writer.py). What counts as safe: docs/fix.md."""

from __future__ import annotations

import io
import warnings
from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

from ..core.decoding import declared_encoding
from ..core.findings import FileError, FileResult, Finding
from .hoist_targets import FIXABLE_CODES, RewriteError, hoistable

if TYPE_CHECKING:
    from ..config import Config
    from ..core.span import Span
    from ..engine import Analysis


def fix_source(source: bytes, path: str, config: Config, written: bool = True) -> FileResult:
    """Apply every safe fix to one file's bytes. Never raises for bad input: problems become FileErrors.

    The findings that remain are positioned in the fixed text when it is `written`, else (`--diff`) in
    `source`, the file on disk."""
    from ..engine import collector_paused

    # As for one analysis (engine.py), for the whole fix: it keeps the file's tree alive while LibCST and
    # the verifying analysis allocate, and the collector's passes over it find nothing (~10 % of --diff).
    with collector_paused():
        return _fix_source(source, path, config, written).result


class FixRound(NamedTuple):
    """One `fix_source` with the analyses it made, for a caller that fixes in rounds (a notebook's cells,
    notebook/adapter.py) and so never has to analyse a text twice."""

    result: FileResult
    analysis: Analysis | None  # of the bytes as given; None when the prefilter skipped them or they failed
    fixed: Analysis | None  # of `result.new_source`: the verification's; None when nothing changed


def fix_round(source: bytes, path: str, config: Config, analysis: Analysis | None = None) -> FixRound:
    """`fix_source(source, ...)` starting from `analysis`, the caller's analysis of these very bytes if it
    has one, with the analyses it rests on."""
    from ..engine import collector_paused

    with collector_paused():
        return _fix_source(source, path, config, True, analysis)


def _fix_source(source: bytes, path: str, config: Config, written: bool, given: Analysis | None = None) -> FixRound:
    from ..analysis.module_names import ModuleLevelNames
    from ..core.decoding import SourceError
    from ..engine import analyze_bytes, lint_source, might_match, run_deep
    from .edits import EditFailed, apply_edit_fixes

    if not might_match(source, config):
        result = lint_source(source, path, config)
        result.original_source = source
        return FixRound(result, None, None)
    result = FileResult(path, original_source=source)
    try:
        edited = apply_edit_fixes(source, path, config, config.unsafe_fixes, given)  # text-edit fixes first
        analysis = edited.analysis or analyze_bytes(edited.source, path, config)  # exactly what checking runs
    except EditFailed as exc:
        findings = given.findings if given is not None else lint_source(source, path, config).findings
        return FixRound(_failed(result, findings, str(exc)), given, None)
    except SourceError as exc:
        result.errors.append(exc.error)
        return FixRound(result, None, None)
    original = edited.original or analysis
    findings = analysis.findings
    verified: Analysis | None = None
    try:
        if not any(hoistable(f) for f in findings):
            new_source, fixed, remaining = edited.source, [], findings
        else:
            from .hoist import apply_hoists, plan_hoists

            hoists = plan_hoists(findings)
            taken = ModuleLevelNames(analysis.text, analysis.tree)
            new_text = run_deep(lambda: apply_hoists(analysis.text, analysis.tree, hoists, taken))
            new_source = new_text.encode(declared_encoding(source))
            fixed = [f for h in hoists for f in h.findings]
            verified = _verify(new_source, path, config, findings, fixed)
            remaining = verified.findings
    except _FixFailed as exc:
        return FixRound(_failed(result, findings, f"the fix would produce code that {exc}"), original, None)
    except RewriteError as exc:
        return FixRound(_failed(result, findings, f"the rewrite did not match the analysis: {exc}"), original, None)
    except Exception as exc:  # a bug in the fixer must not stop the run or damage the file
        return FixRound(_failed(result, findings, f"{type(exc).__name__}: {exc}"), original, None)
    result.new_source = new_source if new_source != source else None
    result.fixed = len(fixed) + len(edited.fixed) if result.new_source is not None else 0
    if not written and result.new_source is not None:  # the same findings (verified), as in the original text
        final_text = new_text if fixed else analysis.text
        on_disk = analysis if edited.source == source else edited.original or analyze_bytes(source, path, config)
        gone = edited.fixed if on_disk is edited.original else []  # the first round's are `on_disk`'s own
        remaining = remaining_on_disk(remaining, final_text, on_disk.findings, on_disk.text, gone)
    result.findings = remaining
    if result.new_source is None:
        return FixRound(result, original, None)
    # Without a hoist the new bytes are the last edit round's, which `analysis` is of.
    return FixRound(result, original, verified if verified is not None else analysis)


def fixes_by_finding(source: bytes, path: str, config: Config) -> dict[tuple[str, Span], bytes]:
    """For each fixable finding, the source with that finding's own fix alone applied (SARIF gives each
    result its own fix), keyed by (code, span). Findings whose fix cannot be made or checked are left out."""
    from ..analysis.module_names import ModuleLevelNames
    from ..core.decoding import SourceError
    from ..engine import analyze_bytes, run_deep
    from .edits import apply_to_text
    from .edits import verify_text as verify_edit

    try:
        analysis = analyze_bytes(source, path, config)
    except SourceError:
        return {}
    findings = analysis.findings
    encoding = declared_encoding(source)
    taken = ModuleLevelNames(analysis.text, analysis.tree)  # only read by each hoist: one per file
    fixes: dict[tuple[str, Span], bytes] = {}
    for finding in findings:
        if not finding.fixable:
            continue
        try:
            if finding.edits is not None:
                new_text = apply_to_text(analysis.text, finding.edits.edits)
                verify_edit(new_text, path, config, findings, [finding])
                new_source = new_text.encode(encoding)
            else:
                from .hoist import apply_hoists, plan_hoists

                hoists = plan_hoists([finding])
                if not hoists:
                    continue
                new_text = run_deep(partial(apply_hoists, analysis.text, analysis.tree, hoists, taken))
                new_source = new_text.encode(encoding)
                _verify(new_source, path, config, findings, [f for h in hoists for f in h.findings])
        except Exception:
            continue
        fixes[(finding.code, finding.span)] = new_source
    return fixes


def fix_file(path: str, source: bytes, config: Config) -> FileResult:
    """fix_source, then write the result in place (atomic, mode-preserving, refusing concurrent changes)."""
    from .writer import WriteRefused, write_atomic

    result = fix_source(source, path, config)
    if result.new_source is None:
        return result  # nothing to fix: the file is not touched (mtime unchanged)
    try:
        write_atomic(path, source, result.new_source)
    except WriteRefused as exc:
        return _unwritten(result, source, config, exc.error)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        error = FileError(path, f"cannot write the fixed file: {reason}; it was left unchanged.", kind="io-error")
        return _unwritten(result, source, config, error)
    return result


# ---------------------------------------------------------------------- internals
class _FixFailed(Exception):
    """The rewritten module failed a check: the file is left as it was."""


def _verify(new_source: bytes, path: str, config: Config, before: list[Finding], fixed: list[Finding]) -> Analysis:
    """Re-lint and compile the fixed bytes (compiled from the tree the analysis parsed: one parse, and the
    compiler's own checks after it); their analysis (the findings that remain)."""
    from ..core.decoding import SourceError
    from ..engine import analyze_bytes

    try:
        analysis = analyze_bytes(new_source, path, config)
    except SourceError as exc:
        what = "does not compile" if exc.error.kind == "syntax-error" else "cannot be analysed"
        raise _FixFailed(f"{what} ({exc.error.message})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(analysis.tree, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise _FixFailed(f"does not compile ({exc})") from None
    after = analysis.findings
    expected = Counter(f.code for f in before)
    expected.subtract(f.code for f in fixed)
    if Counter(f.code for f in after) != +expected:
        still = sorted(f.code for f in after if f.code in FIXABLE_CODES and f.fixable)
        detail = f"still has fixable {', '.join(still)}" if still else "changes other findings"
        raise _FixFailed(f"{detail} when linted again")
    return analysis


def remaining_on_disk(
    remaining: list[Finding], new_text: str, on_disk: list[Finding], old_text: str, fixed: Sequence[Finding] = ()
) -> list[Finding]:
    """The findings of the original text that are still there after the fix: each remaining finding matched,
    through the lines the fix left unchanged, to the original's finding of its code at the same place (the
    fixes move lines: spans alone cannot tell). A finding on a changed line takes one of its code there, the
    one with its message first (two findings of one code can share a rewritten line, one of them fixed).
    `fixed`: findings of `on_disk` known fixed, never taken."""
    if not remaining:
        return []  # the usual case: every finding was fixed, no line needs placing
    new_to_old = unchanged_lines(
        io.StringIO(old_text, newline="").readlines(), io.StringIO(new_text, newline="").readlines()
    )
    gone = {id(f) for f in fixed}
    pool = [f for f in on_disk if id(f) not in gone]
    kept: list[Finding] = []
    unplaced: list[Finding] = []
    for finding in remaining:
        span = finding.span
        start, end = new_to_old.get(span.line), new_to_old.get(span.end_line)
        place = (start, span.column, end, span.end_column)
        match = next((f for f in pool if f.code == finding.code and start and end and _place(f) == place), None)
        if match is None:
            unplaced.append(finding)
            continue
        pool.remove(match)
        kept.append(match)
    for finding in unplaced:
        same_code = [f for f in pool if f.code == finding.code]
        match = next((f for f in same_code if f.message == finding.message), same_code[0] if same_code else None)
        if match is not None:
            pool.remove(match)
            kept.append(match)
    return sorted(kept, key=lambda f: f.sort_key)


def unchanged_lines(old_lines: list[str], new_lines: list[str]) -> dict[int, int]:
    """1-based line numbers of `new_lines` -> the line of `old_lines` each one is, unchanged.

    The lines before the first difference and after the last one are themselves (a fix changes a few
    places of a long file): only the lines between are matched with difflib, which costs far more per line.
    Where a repeated line (a blank line, a `)`) borders a change, difflib over the whole file may take
    another of its copies; these two runs are where the fix left them.
    """
    import difflib

    shortest = min(len(old_lines), len(new_lines))
    head = 0
    while head < shortest and old_lines[head] == new_lines[head]:
        head += 1
    tail = 0
    while tail < shortest - head and old_lines[-1 - tail] == new_lines[-1 - tail]:
        tail += 1
    old_end, new_end = len(old_lines) - tail, len(new_lines) - tail
    new_to_old = {line: line for line in range(1, head + 1)}
    matcher = difflib.SequenceMatcher(None, old_lines[head:old_end], new_lines[head:new_end], autojunk=False)
    for block in matcher.get_matching_blocks():
        new_to_old.update((head + block.b + k + 1, head + block.a + k + 1) for k in range(block.size))
    new_to_old.update((new_end + k + 1, old_end + k + 1) for k in range(tail))
    return new_to_old


def _place(finding: Finding) -> tuple[int, int, int, int]:
    span = finding.span
    return (span.line, span.column, span.end_line, span.end_column)


def _failed(result: FileResult, findings: list[Finding], reason: str) -> FileResult:
    result.findings = findings
    result.errors.append(
        FileError(
            result.path,
            f"could not fix this file ({reason}); it was left unchanged. Please report this with the file.",
            kind="internal-error",
        )
    )
    return result


def _unwritten(result: FileResult, source: bytes, config: Config, error: FileError) -> FileResult:
    """The fix was computed but not written: report the file as it is on disk."""
    from ..engine import lint_source

    unchanged = lint_source(source, result.path, config)
    unchanged.original_source = source
    unchanged.errors.append(error)
    return unchanged
