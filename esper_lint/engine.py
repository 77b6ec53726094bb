"""The rule engine: one file's bytes in, its findings (or the reason it could not be checked) out.

Pipeline: text prefilter -> decode check -> `ast.parse` -> analysis (`analysis/module_facts.py`) ->
rules -> noqa. Checking and fixing share it (`analyze_bytes`); the fixer then rewrites what the
analysis describes (docs/architecture.md). Linting never imports, executes or evaluates the code it reads.
"""

from __future__ import annotations

import ast
import functools
import gc
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from .config import Config
from .core.decoding import NOT_CHECKED, SourceError, check_decodable
from .core.findings import FileError, FileResult, Finding
from .core.noqa import file_noqa, file_suppressed, noqa_at, suppressed
from .core.records import NamedTuple
from .rules import ALL_RULES, Rule

if TYPE_CHECKING:
    from .analysis.model import ModuleFacts


def might_match(source: bytes, config: Config) -> bool:
    """Sound prefilter: a file that reaches a mask API must spell the API's name somewhere.

    The analysis only reports calls whose callee resolves, through imports, aliases, `module.attr`
    chains, assignments and `partial`/`torch.compile` wrappers, to a qualified name in the API table.
    Each of those routes starts from an import or attribute access that spells the API's last
    component (`from ...flex_attention import create_block_mask as cbm` still spells it), so a file
    without any of those names cannot produce a finding. This holds for configured APIs too. It is
    not sound for names the analysis cannot see either: `getattr(fa, "create_" + "block_mask")`,
    `from ... import *`. An alias or helper imported from another project module (`from helpers import
    cbm`) is resolved (project.py) only in a file that spells an API's name somewhere: a known limit.
    Byte search also matches a UTF-8 file only; a file in another encoding that spells the name still
    contains its ASCII bytes, as Python identifiers here are ASCII.
    """
    return any(name in source for name in config.apis.spelling_bytes)


def too_deep(path: str, what: str) -> FileError:
    message = f"code is {what}; {NOT_CHECKED}: split the expression, or exclude the file if it is generated"
    return FileError(path, message, kind="too-complex")


def _cpython_parse(text: str, path: str) -> ast.Module:
    """CPython's parse, or a FileError (as SourceError): the one parser every check and fix starts from."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings (invalid escapes) are not ours to report
            return ast.parse(text, filename=path)
    except SyntaxError as exc:
        error = FileError(path, exc.msg, exc.lineno or 1, exc.offset or 1, "syntax-error")
        raise SourceError(error) from None
    except ValueError as exc:  # NUL bytes
        raise SourceError(FileError(path, f"{exc}; {NOT_CHECKED}", kind="syntax-error")) from None
    except (RecursionError, MemoryError):
        raise SourceError(too_deep(path, "nested too deeply for Python itself to compile")) from None


class Analysis(NamedTuple):
    """A decoded, parsed module with its findings: what the fixer needs to rewrite it."""

    text: str
    tree: ast.Module
    findings: list[Finding]


def analyze_bytes(source: bytes, path: str, config: Config) -> Analysis:
    """Decode, parse and analyse one file; SourceError for a file that cannot be checked.

    Checking, `--fix`/`--diff`, the flake8 plugin and the language server all come through here: one
    analysis, so a finding's `fixable` and the fix itself rest on the same facts.
    """
    text = check_decodable(source, path)
    with collector_paused():
        tree = _cpython_parse(text, path)
        try:
            findings = analyze_fast(tree, text, path, config)
        except RecursionError:  # the analysis walks recursively: pathologically deep code is a known limit
            raise SourceError(too_deep(path, "nested too deeply to analyze")) from None
    offer_unsafe_fixes(findings, config)
    return Analysis(text, tree, findings)


def offer_unsafe_fixes(findings: list[Finding], config: Config) -> None:
    """`--unsafe-fixes` applies them: counted, offered and carried as fixable, as ruff does."""
    if config.unsafe_fixes:
        for finding in findings:
            finding.fixable = finding.fixable or (finding.edits is not None and not finding.edits.safe)


@contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a tree is built and analysed.

    `ast.parse` allocates one object per node and the analysis keeps them all alive: the collector's
    passes over them cost about as much as the parse itself, and find nothing (trees hold no cycles, and
    the analysis breaks its own before it returns: `_ScopeBuilder.release`).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def analyze_fast(tree: ast.Module, text: str, path: str, config: Config) -> list[Finding]:
    """Findings for a module parsed with `ast.parse(text)`."""
    from .analysis.module_facts import analyze_source

    rules = _rules_for(path, config)
    if not rules:
        return []
    project = config.project.names_for(path) if config.project is not None else None
    return _apply_rules(analyze_source(tree, text, config.apis, project), rules, path, text, tree)


# The fixer's LibCST visitors recurse per nesting level: they run on a thread with this stack and a
# recursion limit to match, so code the analysis could check can also be fixed.
_DEEP_STACK = 256 * 1024 * 1024
_DEEP_RECURSION = 30_000
T = TypeVar("T")


@functools.lru_cache(maxsize=1)
def _stack_lock() -> AbstractContextManager[bool]:
    import threading

    return threading.Lock()


def run_deep(work: Callable[[], T]) -> T:
    """`work()` on a thread with a large stack and recursion limit; its exception is raised here."""
    import threading  # only the fixer needs it

    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(work())
        except BaseException as exc:  # handed to the calling thread, which raises it
            failure.append(exc)

    with _stack_lock():  # the stack size and the recursion limit are process-wide
        try:
            previous = threading.stack_size(_DEEP_STACK)
        except (ValueError, RuntimeError):  # platform refuses: run on this thread's stack
            return work()
        limit = sys.getrecursionlimit()
        try:
            sys.setrecursionlimit(max(limit, _DEEP_RECURSION))
            thread = threading.Thread(target=run, name="esper-lint-fix", daemon=True)
            thread.start()
        finally:
            threading.stack_size(previous)
        thread.join()
        sys.setrecursionlimit(limit)
    if failure:
        raise failure[0]
    return outcome[0]


def _rules_for(path: str, config: Config) -> list[Rule]:
    codes = config.codes_for(path)
    return [rule() for rule in ALL_RULES if rule.code in codes]


def _apply_rules(
    facts: ModuleFacts, rules: list[Rule], path: str, text: str, tree: ast.Module | None = None
) -> list[Finding]:
    findings: list[Finding] = []
    nested_lines = {u.arg_span.line for u in facts.uses if any(f.nested for f in u.functions)}
    noqa = noqa_at(text, nested_lines, tree) if nested_lines else {}
    if noqa:  # a suppressed use blocks the hoist for the others
        from .analysis.hoist_safety import mark_suppressed_uses

        mark_suppressed_uses(facts.uses, lambda line, code: suppressed(noqa, line, code))
    for use in facts.uses:
        for rule in rules:
            if use.role in rule.roles:
                findings.extend(rule.check(path, use))
    for use in facts.signature_uses:  # functions known by their parameters alone: no call to judge
        for rule in rules:
            if not rule.needs_call and use.role in rule.roles:
                findings.extend(rule.check(path, use))
    for rule in rules:
        findings.extend(rule.check_module(path, facts))
    noqa = noqa_at(text, {f.span.line for f in findings}, tree) if findings else {}
    if noqa:
        findings = [f for f in findings if not suppressed(noqa, f.span.line, f.code)]
    if findings:  # `# esper-lint: noqa[: CODES]` anywhere in the file
        in_file = file_noqa(text, tree)
        findings = [f for f in findings if not file_suppressed(in_file, f.code)]
    findings.sort(key=lambda f: f.sort_key)
    return _dedupe(findings)


def _dedupe(findings: list[Finding]) -> list[Finding]:
    out: list[Finding] = []
    seen: set[tuple[object, ...]] = set()
    for f in findings:
        key = (f.span, f.code, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def module_exports(source: bytes, path: str, config: Config) -> dict[str, Any] | None:
    """What a module offers the other modules of its project (analysis/module_exports.py), from its bytes
    alone; None when it cannot be read as Python (an importer then knows nothing of its names)."""
    from .analysis.module_exports import module_exports as exports

    try:
        text = check_decodable(source, path)
        with collector_paused():
            return exports(_cpython_parse(text, path), text, config.apis)
    except (SourceError, RecursionError):
        return None


def lint_source(source: bytes, path: str, config: Config) -> FileResult:
    """Lint one file's bytes. Never raises for bad input: problems become FileErrors."""
    result = FileResult(path)
    if not might_match(source, config):
        # Still report undecodable files: a file we cannot read is never silently "clean".
        try:
            check_decodable(source, path)
        except SourceError as exc:
            result.errors.append(exc.error)
        return result
    try:
        with collector_paused():  # until the tree is gone too: a pass over it on the way out finds nothing
            result.findings = analyze_bytes(source, path, config).findings
    except SourceError as exc:
        result.errors.append(exc.error)
    return result
