"""Safe fixes: the hoisting codemod behind `esper-lint --fix` and `--diff` (see docs/fix.md).

`fix_source` computes the fixed bytes and what remains; `fix_file` also writes them (writer.py);
`unified_diff` renders a change for `--diff`. When a fix is offered: esper_lint/fix/safety.py.
"""

from __future__ import annotations

import io
import tokenize
import warnings
from collections import Counter
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING

from ..findings import FileError, FileResult, Finding

if TYPE_CHECKING:  # rules import .safety while the config module is still loading: no cycle at run time
    from ..analysis.model import Span
    from ..config import Config

FIXABLE_CODES = frozenset({"ESP001", "ESP002"})

__all__ = ["fix_file", "fix_source", "fixes_by_finding", "unified_diff", "unified_diff_bytes"]


class RewriteError(Exception):
    """The hoist's rewrite (hoist.py) could not match the analysis' facts to the code: nothing is written."""


def hoistable(finding: Finding) -> bool:
    """A finding the hoisting codemod (hoist.py) fixes: asked here first, so that a file with none
    never imports LibCST."""
    fn = finding.target
    return finding.code in FIXABLE_CODES and finding.fixable and fn is not None and fn.site is not None


def fix_source(source: bytes, path: str, config: Config, written: bool = True) -> FileResult:
    """Apply every safe fix to one file's bytes. Never raises for bad input: problems become FileErrors.

    The findings that remain are positioned in the fixed text when it is `written`, else (`--diff`) in
    `source`, the file on disk."""
    from ..engine import _collector_paused

    # As for one analysis (engine.py), for the whole fix: it keeps the file's tree alive while LibCST and
    # the verifying analysis allocate, and the collector's passes over it find nothing (~10 % of --diff).
    with _collector_paused():
        return _fix_source(source, path, config, written)


def _fix_source(source: bytes, path: str, config: Config, written: bool) -> FileResult:
    from ..analysis.fast_backend import ModuleLevelNames
    from ..engine import SourceError, analyze_bytes, lint_source, might_match, run_deep
    from .edits import EditFailed, apply_edit_fixes

    if not might_match(source, config):
        result = lint_source(source, path, config)
        result.original_source = source
        return result
    result = FileResult(path, original_source=source)
    try:
        edited = apply_edit_fixes(source, path, config, config.unsafe_fixes)  # text-edit fixes first (edits.py)
        analysis = edited.analysis or analyze_bytes(edited.source, path, config)  # exactly what checking runs
    except EditFailed as exc:
        return _failed(result, lint_source(source, path, config).findings, str(exc))
    except SourceError as exc:
        result.errors.append(exc.error)
        return result
    findings = analysis.findings
    try:
        if not any(hoistable(f) for f in findings):
            new_source, fixed, remaining = edited.source, [], findings
        else:
            from .hoist import apply_hoists, plan_hoists

            hoists = plan_hoists(findings)
            taken = ModuleLevelNames(analysis.text, analysis.tree)
            new_text = run_deep(lambda: apply_hoists(analysis.text, analysis.tree, hoists, taken))
            new_source = new_text.encode(_encoding(source))
            fixed = [f for h in hoists for f in h.findings]
            remaining = _verify(new_source, path, config, findings, fixed)
    except _FixFailed as exc:
        return _failed(result, findings, f"the fix would produce code that {exc}")
    except RewriteError as exc:
        return _failed(result, findings, f"the rewrite did not match the analysis: {exc}")
    except Exception as exc:  # a bug in the fixer must not stop the run or damage the file
        return _failed(result, findings, f"{type(exc).__name__}: {exc}")
    result.new_source = new_source if new_source != source else None
    result.fixed = len(fixed) + len(edited.fixed) if result.new_source is not None else 0
    if not written and result.new_source is not None:  # the same findings (verified), as in the original text
        final_text = new_text if fixed else analysis.text
        on_disk = analysis if edited.source == source else edited.original or analyze_bytes(source, path, config)
        gone = edited.fixed if on_disk is edited.original else []  # the first round's are `on_disk`'s own
        remaining = remaining_on_disk(remaining, final_text, on_disk.findings, on_disk.text, gone)
    result.findings = remaining
    return result


def fixes_by_finding(source: bytes, path: str, config: Config) -> dict[tuple[str, Span], bytes]:
    """For each fixable finding, the source with that finding's own fix alone applied (SARIF gives each
    result its own fix), keyed by (code, span). Findings whose fix cannot be made or checked are left out."""
    from ..analysis.fast_backend import ModuleLevelNames
    from ..engine import SourceError, analyze_bytes, run_deep
    from .edits import apply_to_text
    from .edits import verify_text as verify_edit

    try:
        analysis = analyze_bytes(source, path, config)
    except SourceError:
        return {}
    findings = analysis.findings
    encoding = _encoding(source)
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


def unified_diff(path: str, old: bytes, new: bytes) -> str:
    """`--- a/path` / `+++ b/path` unified diff of two versions of a source file (as `ruff --diff`)."""
    import difflib  # only --diff needs it; checking imports this package for FIXABLE_CODES

    display = path.replace("\\", "/").lstrip("/")
    lines = difflib.unified_diff(
        _diff_lines(old), _diff_lines(new), fromfile=f"a/{display}", tofile=f"b/{display}", lineterm="\n"
    )
    return "".join(lines)


def unified_diff_bytes(path: str, old: bytes, new: bytes) -> bytes:
    """`unified_diff` in the file's own encoding (its coding cookie or BOM), so `patch` applies it to the
    file as it is on disk: a latin-1 file gets a latin-1 diff, not UTF-8."""
    return unified_diff(path, old, new).encode(_diff_encoding(old), errors="backslashreplace")


# ---------------------------------------------------------------------- internals
class _FixFailed(Exception):
    """The rewritten module failed a check: the file is left as it was."""


def _verify(new_source: bytes, path: str, config: Config, before: list[Finding], fixed: list[Finding]) -> list[Finding]:
    """Re-lint and compile the fixed bytes (compiled from the tree the analysis parsed: one parse, and the
    compiler's own checks after it); the findings that remain."""
    from ..engine import SourceError, analyze_bytes

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
    return after


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


def _encoding(source: bytes) -> str:
    """The encoding the file was decoded with (BOM, coding cookie, else UTF-8): the fix is written in it."""
    try:
        return tokenize.detect_encoding(io.BytesIO(source).readline)[0]
    except SyntaxError:  # an unusable cookie: such a file is never decoded, so never fixed, either
        return "utf-8"


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


def _diff_encoding(source: bytes) -> str:
    """The encoding Python reads the file in (BOM, coding cookie, else UTF-8), without the BOM itself
    (difflib's lines carry it already)."""
    try:
        encoding = _encoding(source)
        source.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return "utf-8"
    return "utf-8" if encoding == "utf-8-sig" else encoding


def _diff_lines(source: bytes) -> list[str]:
    """Decode as Python would (BOM, coding cookie, else UTF-8); lines keep their own endings."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
        text = source.decode(encoding)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        text = source.decode("utf-8", errors="replace")
    lines = io.StringIO(text, newline="").readlines()  # splits at \n, \r\n and \r only, as Python does
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines
