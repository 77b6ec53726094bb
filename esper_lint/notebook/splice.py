"""Changed cells written back into the notebook's JSON text: only the `source` value of each changed cell is
replaced; every other byte (outputs, metadata, other cells, key order, indentation, escapes, final newline)
is kept.

Re-dumping the whole document instead would rewrite anything its writer spelled differently (floats, key
order, indent, `ensure_ascii`, which differ between Jupyter, VS Code and Colab). The new source keeps the
cell's storage (a list of lines, nbformat's convention, or one string) and the array's own layout, and the
result is parsed back and compared with the expected document before anything is written.
"""

from __future__ import annotations

import copy
import json
import re

from .cells import Notebook


class CannotSplice(Exception):
    """The fixed module cannot be put back into the notebook cell by cell without doubt."""


_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def _skip(text: str, i: int) -> int:
    match = _WS.match(text, i)
    assert match is not None
    return match.end()


def _value_end(text: str, i: int) -> int:
    _, end = _DECODER.raw_decode(text, i)
    return end


def _members(text: str, i: int) -> dict[str, tuple[int, int]]:
    """An object's keys -> (start, end) of their values; `i` is at the `{` (the last duplicate key wins, as in json)."""
    assert text[i] == "{"
    members: dict[str, tuple[int, int]] = {}
    i = _skip(text, i + 1)
    if text[i] == "}":
        return members
    while True:
        key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
        i = _skip(text, i)
        assert text[i] == ":"
        start = _skip(text, i + 1)
        end = _value_end(text, start)
        members[key] = (start, end)
        i = _skip(text, end)
        if text[i] == "}":
            return members
        assert text[i] == ","
        i = _skip(text, i + 1)


def _items(text: str, i: int) -> list[tuple[int, int]]:
    """An array's items as (start, end); `i` is at the `[`."""
    assert text[i] == "["
    items: list[tuple[int, int]] = []
    i = _skip(text, i + 1)
    if text[i] == "]":
        return items
    while True:
        end = _value_end(text, i)
        items.append((i, end))
        i = _skip(text, end)
        if text[i] == "]":
            return items
        assert text[i] == ","
        i = _skip(text, i + 1)


def _source_value(text: str, cells_value: tuple[int, int], index: int) -> tuple[int, int]:
    start, _ = _items(text, cells_value[0])[index]
    return _members(text, start)["source"]


def splice_sources(notebook: Notebook, new_sources: dict[int, str]) -> str:
    """The JSON text with the `source` of the cells in `new_sources` (by index) replaced, nothing else."""
    text = notebook.text
    if not new_sources:
        return text
    cells_value = _members(text, _skip(text, 0))["cells"]
    ensure_ascii = text.isascii()  # a writer that escaped nothing wrote raw UTF-8; keep to its choice
    expected = copy.deepcopy(notebook.data)
    replacements: list[tuple[int, int, str]] = []
    for index, new in sorted(new_sources.items()):
        start, end = _source_value(text, cells_value, index)
        stored = expected["cells"][index]["source"]
        if isinstance(stored, str):
            value: str | list[str] = new
            rendered = json.dumps(new, ensure_ascii=ensure_ascii)
        else:
            value = new.splitlines(keepends=True)  # nbformat's convention for a list of lines
            rendered = _render_list(text, start, end, value, ensure_ascii)
        expected["cells"][index]["source"] = value
        replacements.append((start, end, rendered))
    pieces: list[str] = []
    last = 0
    for start, end, rendered in replacements:
        pieces += [text[last:start], rendered]
        last = end
    pieces.append(text[last:])
    new_text = "".join(pieces)
    if json.loads(new_text) != expected:
        raise CannotSplice("the notebook's JSON would not read back as expected")
    return new_text


def _render_list(text: str, start: int, end: int, lines: list[str], ensure_ascii: bool) -> str:
    """`lines` as a JSON array laid out like the array at text[start:end] (its whitespace around items)."""
    items = _items(text, start)
    if not items:
        return json.dumps(lines, ensure_ascii=ensure_ascii)
    opening = text[start + 1 : items[0][0]]
    closing = text[items[-1][1] : end - 1]
    separator = text[items[0][1] : items[1][0]] if len(items) > 1 else "," + opening
    rendered = separator.join(json.dumps(line, ensure_ascii=ensure_ascii) for line in lines)
    return "[" + opening + rendered + closing + "]"
