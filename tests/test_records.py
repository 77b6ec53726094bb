"""Findings and file results are plain slotted classes (esper_lint/records.py): they compare, print and
refuse hashing as the dataclasses they replaced did."""

from __future__ import annotations

import pickle

import pytest

from esper_lint.analysis.model import Span
from esper_lint.findings import FileError, FileResult, Finding


def _finding(**changes: object) -> Finding:
    fields: dict[str, object] = {
        "path": "a.py",
        "span": Span(1, 2, 1, 9),
        "code": "ESP001",
        "name": "nested-mask-mod",
        "message": "m",
    }
    fields.update(changes)
    return Finding(**fields)  # type: ignore[arg-type]


def test_equal_by_the_compared_fields_only() -> None:
    assert _finding() == _finding()
    assert _finding() != _finding(code="ESP002")
    assert _finding() != _finding(cell=3)
    # What a fix carries is not part of a finding's identity (compare=False before).
    assert _finding(fixed_source=b"x", edits=None) == _finding(fixed_source=b"y")
    assert FileError("a.py", "bad", 1, 2, "syntax-error") == FileError("a.py", "bad", 1, 2, "syntax-error")
    assert FileError("a.py", "bad", 1) != FileError("a.py", "bad", 2)
    assert FileResult("a.py", [_finding()]) == FileResult("a.py", [_finding()])
    assert FileResult("a.py") != FileResult("a.py", fixed=1)
    assert _finding() != "not a finding"


def test_unhashable_and_printable_like_dataclasses() -> None:
    with pytest.raises(TypeError):
        hash(_finding())
    with pytest.raises(TypeError):
        hash(FileResult("a.py"))
    text = repr(_finding())
    assert text.startswith("Finding(path='a.py', span=Span(line=1, column=2, end_line=1, end_column=9)")
    assert "fixed_source" not in text
    assert repr(FileError("a.py", "bad")) == (
        "FileError(path='a.py', message='bad', line=None, column=None, kind='error', cell=None)"
    )


def test_results_cross_process_boundaries() -> None:
    """Worker processes send results back pickled."""
    result = FileResult("a.py", [_finding(fixable=True)], [FileError("a.py", "bad", 3)])
    assert pickle.loads(pickle.dumps(result)) == result


def test_defaults_are_not_shared() -> None:
    first, second = FileResult("a.py"), FileResult("b.py")
    first.findings.append(_finding())
    assert second.findings == [] and second.errors == []
