"""Findings and file results are plain slotted classes (esper_lint/records.py): they compare, print and
refuse hashing as the dataclasses they replaced did."""

from __future__ import annotations

import pickle

import pytest

from esper_lint.core.findings import FileError, FileResult, Finding
from esper_lint.core.span import Span


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


def test_config_is_an_immutable_value() -> None:
    from pathlib import Path

    from esper_lint.config import Config
    from esper_lint.core.apis import MaskApi

    root = Path("/tmp")
    config = Config(root=root, select=frozenset({"ESP001"}))
    with pytest.raises(AttributeError):
        config.timeout = 1.0  # type: ignore[misc]
    # Messages and where settings came from are not part of what a configuration is.
    assert config == Config(root=root, select=frozenset({"ESP001"}), warnings=("w",), origins=(("select", "cli"),))
    assert hash(config) == hash(Config(root=root, select=frozenset({"ESP001"})))
    assert config != Config(root=root)
    changed = config.replace(timeout=5.0, warnings=("w",))
    assert (changed.timeout, changed.warnings, changed.select, config.timeout) == (5.0, ("w",), config.select, 60.0)
    with pytest.raises(TypeError):
        config.replace(no_such_setting=1)
    # The API table is built for the copy's own mask APIs, not carried over from the original.
    api = MaskApi("my.lib.make_mask", 0, "mask_mod")
    assert config.apis.get("my.lib.make_mask") is None
    assert config.replace(mask_apis=(api,)).apis.get("my.lib.make_mask") == api
