"""The rule engine: one file's bytes in, its findings (or the reason it could not be checked) out.

Pipeline: text prefilter -> decode check -> LibCST parse -> analysis backend -> rules -> noqa.
Linting never imports, executes or evaluates the code it reads.
"""

from __future__ import annotations

import ast
import codecs
import io
import tokenize
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .config import Config
from .findings import FileError, FileResult, Finding
from .noqa import noqa_lines, suppressed
from .rules import ALL_RULES

if TYPE_CHECKING:
    import libcst as cst


def might_match(source: bytes, config: Config) -> bool:
    """Sound prefilter: a file that reaches a mask API must spell the API's name somewhere.

    Every route to an API (import, `module.attr` access, alias assignment) contains the last component
    of its qualified name as text. Files without any of those names cannot produce a finding.
    """
    return any(name.encode() in source for name in config.apis.spellings())


class SourceError(Exception):
    def __init__(self, error: FileError) -> None:
        super().__init__(str(error))
        self.error = error


def check_decodable(source: bytes, path: str) -> str:
    """Decode as Python would (BOM, coding cookie, else UTF-8); a clear error otherwise."""
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    except SyntaxError as exc:
        raise SourceError(FileError(path, str(exc.msg if hasattr(exc, "msg") else exc), kind="decode-error")) from None
    try:
        codecs.lookup(encoding)
        return source.decode(encoding)
    except LookupError:
        raise SourceError(FileError(path, f"unknown encoding {encoding!r} in coding declaration", kind="decode-error")) from None
    except UnicodeDecodeError as exc:
        line = source[: exc.start].count(b"\n") + 1
        raise SourceError(
            FileError(path, f"cannot decode as {encoding}: {exc.reason} (byte offset {exc.start})", line, 1, "decode-error")
        ) from None


def _syntax_error(source: bytes, path: str, libcst_error: Exception) -> FileError:
    """CPython's own message is clearer than the parser's: ask `ast` where the error is."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(source, filename=path)
    except SyntaxError as exc:
        return FileError(path, exc.msg, exc.lineno or 1, exc.offset or 1, "syntax-error")
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, pathological nesting
        return FileError(path, str(exc) or type(exc).__name__, kind="syntax-error")
    line = getattr(libcst_error, "raw_line", None)
    column = getattr(libcst_error, "raw_column", None)
    message = getattr(libcst_error, "message", str(libcst_error)).splitlines()[0]
    return FileError(path, message, line, (column or 0) + 1 if line else None, "syntax-error")


def parse(source: bytes, path: str) -> cst.Module:
    import libcst as cst  # deferred: files the prefilter rejects never pay for importing LibCST

    check_decodable(source, path)
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        raise SourceError(_syntax_error(source, path, exc)) from None
    except SyntaxError as exc:
        raise SourceError(FileError(path, exc.msg or str(exc), kind="decode-error")) from None
    except RecursionError:
        raise SourceError(FileError(path, "code is nested too deeply to parse", kind="syntax-error")) from None


@dataclass
class Analysis:
    """A parsed module with its findings: what the fixer needs to rewrite it."""

    module: cst.Module
    findings: list[Finding]


def analyze(module: cst.Module, path: str, config: Config) -> list[Finding]:
    from .analysis.libcst_backend import analyze_module

    codes = config.codes_for(path)
    rules = [rule() for rule in ALL_RULES if rule.code in codes]
    if not rules:
        return []
    facts = analyze_module(module, config.apis)
    findings: list[Finding] = []
    for use in facts.uses:
        for rule in rules:
            findings.extend(rule.check(path, use))
    if findings:
        noqa = noqa_lines(module.code)
        findings = [f for f in findings if not suppressed(noqa, f.span.line, f.code)]
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
        module = parse(source, path)
        result.findings = analyze(module, path, config)
    except SourceError as exc:
        result.errors.append(exc.error)
    except RecursionError:
        result.errors.append(FileError(path, "code is nested too deeply to analyze", kind="internal-error"))
    return result
