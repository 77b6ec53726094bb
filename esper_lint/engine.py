"""The rule engine: one file's bytes in, its findings (or the reason it could not be checked) out.

Pipeline: text prefilter -> decode check -> parse -> analysis backend -> rules -> noqa.
Checking uses the fast backend (stdlib `ast`, `analysis/fast_backend.py`); fixing (`--fix`/`--diff`)
uses the LibCST backend, whose nodes the codemod rewrites. Both produce the same facts, so the same
findings (`tests/test_fast_backend.py`). Linting never imports, executes or evaluates the code it reads.
"""

from __future__ import annotations

import ast
import codecs
import io
import threading
import tokenize
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import Config
from .findings import FileError, FileResult, Finding
from .noqa import NoqaMap, file_noqa, file_suppressed, noqa_lines, suppressed
from .rules import ALL_RULES, Rule

if TYPE_CHECKING:
    import libcst as cst

    from .analysis.model import ModuleFacts


def might_match(source: bytes, config: Config) -> bool:
    """Sound prefilter: a file that reaches a mask API must spell the API's name somewhere.

    The analysis only reports calls whose callee resolves, through imports, aliases, `module.attr`
    chains, assignments and `partial`/`torch.compile` wrappers, to a qualified name in the API table.
    Each of those routes starts from an import or attribute access that spells the API's last
    component (`from ...flex_attention import create_block_mask as cbm` still spells it), so a file
    without any of those names cannot produce a finding. This holds for configured APIs too. It is
    not sound for names the analysis cannot see either: `getattr(fa, "create_" + "block_mask")`,
    `from ... import *`, or a name first bound in another module (`from helpers import cbm`), none of
    which the analysis resolves anyway. Byte search also matches a UTF-8 file only; a file in another
    encoding that spells the name still contains its ASCII bytes, as Python identifiers here are ASCII.
    """
    return any(name in source for name in config.apis.spelling_bytes)


class SourceError(Exception):
    def __init__(self, error: FileError) -> None:
        super().__init__(str(error))
        self.error = error


_NOT_CHECKED = "the file was not checked"


def check_decodable(source: bytes, path: str) -> str:
    """Decode as Python would (BOM, coding cookie, else UTF-8); a clear error otherwise."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError as exc:
        raise SourceError(_encoding_error(source, path, str(exc.msg or exc))) from None
    try:
        codecs.lookup(encoding)
        return source.decode(encoding)
    except LookupError:
        message = f"unknown encoding {encoding!r} in the coding declaration; {_NOT_CHECKED}: fix the `# coding:` line"
        raise SourceError(FileError(path, message, kind="decode-error")) from None
    except UnicodeDecodeError as exc:
        raise SourceError(_undecodable(source, path, encoding, exc)) from None


def _undecodable(source: bytes, path: str, encoding: str, exc: UnicodeDecodeError) -> FileError:
    line = source[: exc.start].count(b"\n") + 1
    column = exc.start - (source.rfind(b"\n", 0, exc.start) + 1) + 1
    message = (
        f"not valid {encoding} (byte {source[exc.start : exc.start + 1]!r}: {exc.reason}); {_NOT_CHECKED}: "
        "save it in that encoding or declare the right one with a `# coding:` line"
    )
    return FileError(path, message, line, column, "decode-error")


def _encoding_error(source: bytes, path: str, reason: str) -> FileError:
    """tokenize's reasons are terse; say which of the usual causes it is and what to do."""
    if reason.startswith("unknown encoding"):
        name = reason.partition(":")[2].strip()
        message = f"unknown encoding {name!r} in the coding declaration; {_NOT_CHECKED}: fix the `# coding:` line"
        return FileError(path, message, kind="decode-error")
    if reason.startswith("encoding problem"):
        message = f"starts with a UTF-8 byte-order mark but declares another encoding; {_NOT_CHECKED}: remove one"
        return FileError(path, message, kind="decode-error")
    # "invalid or missing encoding declaration": the first two lines are not UTF-8 and declare nothing.
    try:
        source.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _undecodable(source, path, "utf-8", exc)
    return FileError(path, f"{reason}; {_NOT_CHECKED}", kind="decode-error")


# Code nested deeper than this is refused before LibCST sees it: its native parser takes quadratic time
# on long chains (`a.b.c...`, `x[0][0]...`, `a + b + ...`) and overflows the C stack, a crash rather than
# an exception, a few thousand levels down. Real code stays far below; CPython's own limits are similar.
MAX_NESTING = 1000
# LibCST runs in a thread with this stack when CPython could not vouch for the depth (a syntax error,
# or syntax newer than this interpreter), so an overflow needs ~30x deeper code than on an 8 MiB stack.
_PARSER_STACK = 256 * 1024 * 1024


def too_deep(path: str, what: str) -> FileError:
    message = f"code is {what}; {_NOT_CHECKED}: split the expression, or exclude the file if it is generated"
    return FileError(path, message, kind="too-complex")


def _nesting_depth(tree: ast.AST, limit: int) -> int:
    """Depth of the deepest node, counted without recursion; stops early past `limit`."""
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _cpython_parse(text: str, path: str) -> tuple[ast.Module | None, SyntaxError | None]:
    """CPython's parse: the tree, or its syntax error; FileError (as SourceError) for code it cannot take."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings (invalid escapes) are not ours to report
            return ast.parse(text, filename=path), None
    except SyntaxError as exc:
        return None, exc
    except ValueError as exc:  # NUL bytes
        raise SourceError(FileError(path, f"{exc}; {_NOT_CHECKED}", kind="syntax-error")) from None
    except (RecursionError, MemoryError):
        raise SourceError(too_deep(path, "nested too deeply for Python itself to compile")) from None


def _syntax_error(
    source: bytes, path: str, libcst_error: Exception, cpython_error: SyntaxError | None = None
) -> FileError:
    """CPython's own message is clearer than LibCST's: ask `ast` where the error is."""
    if cpython_error is None:
        try:
            _, cpython_error = _cpython_parse(check_decodable(source, path), path)
        except SourceError as exc:
            return exc.error
    if cpython_error is not None:
        return FileError(path, cpython_error.msg, cpython_error.lineno or 1, cpython_error.offset or 1, "syntax-error")
    # Python accepts the file, LibCST does not: a LibCST limit (e.g. thousands of implicitly joined strings).
    line = getattr(libcst_error, "raw_line", None)
    column = getattr(libcst_error, "raw_column", None)
    reason = getattr(libcst_error, "message", str(libcst_error)).splitlines()[0]
    message = (
        f"LibCST cannot parse this file although Python accepts it ({reason}); {_NOT_CHECKED}: "
        "exclude it, and please report it to esper-lint"
    )
    return FileError(path, message, line, (column or 0) + 1 if line else None, "parse-error")


def parse(source: bytes, path: str) -> cst.Module:
    import libcst as cst  # deferred: files the prefilter rejects never pay for importing LibCST

    text = check_decodable(source, path)
    tree, cpython_error = _cpython_parse(text, path)
    if tree is not None and _nesting_depth(tree, MAX_NESTING) > MAX_NESTING:
        raise SourceError(too_deep(path, f"nested more than {MAX_NESTING} levels deep"))
    try:
        return cst.parse_module(source) if tree is not None else _parse_on_big_stack(source)
    except cst.ParserSyntaxError as exc:
        raise SourceError(_syntax_error(source, path, exc, cpython_error)) from None
    except SyntaxError as exc:
        raise SourceError(FileError(path, f"{exc.msg or exc}; {_NOT_CHECKED}", kind="decode-error")) from None
    except RecursionError:
        raise SourceError(too_deep(path, "nested too deeply to parse")) from None


_STACK_LOCK = threading.Lock()


def _parse_on_big_stack(source: bytes) -> cst.Module:
    """`cst.parse_module` in a thread with a large stack (see _PARSER_STACK); exceptions come back here."""
    import libcst as cst

    outcome: list[cst.Module | BaseException] = []

    def work() -> None:
        try:
            outcome.append(cst.parse_module(source))
        except BaseException as exc:  # handed to the calling thread, which raises it
            outcome.append(exc)

    with _STACK_LOCK:  # the stack size is process-wide: set it only for this one thread
        try:
            previous = threading.stack_size(_PARSER_STACK)
        except (ValueError, RuntimeError):  # platform refuses: parse on this thread's stack
            return cst.parse_module(source)
        try:
            thread = threading.Thread(target=work, name="esper-lint-parse", daemon=True)
            thread.start()
        finally:
            threading.stack_size(previous)
    thread.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    return result


@dataclass
class Analysis:
    """A parsed module with its findings: what the fixer needs to rewrite it."""

    module: cst.Module
    findings: list[Finding]


def analyze(module: cst.Module, path: str, config: Config) -> list[Finding]:
    """Findings from the LibCST backend (the reference; findings carry nodes the fixer rewrites)."""
    from .analysis.libcst_backend import analyze_module

    rules = _rules_for(path, config)
    if not rules:
        return []
    return _apply_rules(analyze_module(module, config.apis), rules, path, module.code)


def analyze_fast(tree: ast.Module, text: str, path: str, config: Config) -> list[Finding]:
    """Findings from the fast backend for a module parsed with `ast.parse(text)`."""
    from .analysis.fast_backend import analyze_source

    rules = _rules_for(path, config)
    if not rules:
        return []
    return _apply_rules(analyze_source(tree, text, config.apis), rules, path, text, tree)


def _rules_for(path: str, config: Config) -> list[Rule]:
    codes = config.codes_for(path)
    return [rule() for rule in ALL_RULES if rule.code in codes]


def _apply_rules(
    facts: ModuleFacts, rules: list[Rule], path: str, text: str, tree: ast.Module | None = None
) -> list[Finding]:
    findings: list[Finding] = []
    for use in facts.uses:
        for rule in rules:
            findings.extend(rule.check(path, use))
    if findings and _noqa_possible(findings, text):
        noqa = _noqa_near(tree, text, {f.span.line for f in findings}) if tree is not None else noqa_lines(text)
        findings = [f for f in findings if not suppressed(noqa, f.span.line, f.code)]
    if findings:  # `# esper-lint: noqa[: CODES]` anywhere in the file
        in_file = file_noqa(text)
        findings = [f for f in findings if not file_suppressed(in_file, f.code)]
    findings.sort(key=lambda f: f.sort_key)
    return _dedupe(findings)


def _noqa_possible(findings: list[Finding], text: str) -> bool:
    """A suppression sits on a finding's line and spells `noqa`: only then tokenize for comments."""
    if "noqa" not in text.lower():
        return False
    lines = text.splitlines()
    return any(0 < f.span.line <= len(lines) and "noqa" in lines[f.span.line - 1].lower() for f in findings)


def _noqa_near(tree: ast.Module, text: str, lines: set[int]) -> NoqaMap:
    """`noqa_lines` for just the statements holding `lines`: tokenizing a whole large file to find
    comments costs more than analysing it. A simple statement is self-contained for the tokenizer
    (its strings and brackets close inside it); anything else falls back to the whole file."""
    source_lines = text.splitlines(keepends=True)
    result: NoqaMap = {}
    for line in sorted(lines):
        stmt = _simple_statement_at(tree.body, line)
        if stmt is None or stmt.end_lineno is None:
            return noqa_lines(text)
        segment = "".join(source_lines[stmt.lineno - 1 : stmt.end_lineno]).lstrip(" \t")
        for found, codes in noqa_lines(segment).items():
            result[found + stmt.lineno - 1] = codes
    return result


def _simple_statement_at(body: list[ast.stmt], line: int) -> ast.stmt | None:
    for stmt in body:
        if stmt.lineno <= line <= (stmt.end_lineno or stmt.lineno):
            blocks = [getattr(stmt, name, None) or [] for name in ("body", "orelse", "finalbody")]
            blocks += [h.body for h in getattr(stmt, "handlers", None) or []]
            blocks += [c.body for c in getattr(stmt, "cases", None) or []]
            if not any(blocks):
                return stmt  # a simple statement
            for block in blocks:
                found = _simple_statement_at(block, line)
                if found is not None:
                    return found
            return None  # the line is in a compound statement's header
    return None


def parse_fast(text: str, path: str) -> ast.Module | None:
    """`ast.parse`, or None when CPython rejects the text: LibCST then decides, as it may accept
    syntax newer than the running interpreter's, and it reports real syntax errors the same way."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings (invalid escapes) are not ours to report
            return ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _dedupe(findings: list[Finding]) -> list[Finding]:
    out: list[Finding] = []
    seen: set[tuple[object, ...]] = set()
    for f in findings:
        key = (f.span, f.code, f.message)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


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
        text = check_decodable(source, path)
        tree = parse_fast(text, path)
        findings = None
        if tree is not None:
            try:
                findings = analyze_fast(tree, text, path, config)
            except RecursionError:
                findings = None  # pathologically deep code: the reference path below reports it
        result.findings = findings if findings is not None else analyze(parse(source, path), path, config)
    except SourceError as exc:
        result.errors.append(exc.error)
    except RecursionError:  # LibCST's metadata recurses per nesting level (from about 400 levels)
        result.errors.append(too_deep(path, "nested too deeply to analyze"))
    return result
