"""Jupyter notebooks: code cells linted as one module, positions per cell, magics ignored, fixes spliced
into the notebook's JSON with every other byte kept (esper_lint/notebook/)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from conftest import RunCli

from esper_lint import engine
from esper_lint.config import Config
from esper_lint.fix import file_fixer
from esper_lint.fix.file_fixer import fix_source
from esper_lint.notebook import fix_notebook, lint_notebook, load
from esper_lint.notebook.magics import mask_magics

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "notebooks" / "nested_mask.ipynb"
IMPORTS = "from torch.nn.attention.flex_attention import create_block_mask\n"
NESTED = """\
def build(n):
    def causal(b, h, q_idx, kv_idx):
        return q_idx >= kv_idx

    return create_block_mask(causal, None, None, n, n)
"""


def notebook(*sources: str | list[str], markdown_first: bool = True, **metadata: Any) -> dict[str, Any]:
    cells: list[dict[str, Any]] = [{"cell_type": "markdown", "id": "md", "metadata": {}, "source": ["# Title"]}]
    if not markdown_first:
        cells = []
    for n, source in enumerate(sources, start=1):
        stored = source if isinstance(source, list) else source.splitlines(keepends=True)
        cells.append(
            {"cell_type": "code", "execution_count": n, "id": f"c{n}", "metadata": {}, "outputs": [], "source": stored}
        )
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def write(path: Path, nb: dict[str, Any]) -> Path:
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def findings(path: Path) -> list[tuple[int | None, int, int, str]]:
    result = lint_notebook(path.read_bytes(), str(path), Config(root=path.parent))
    assert result.errors == []
    return [(f.cell, f.span.line, f.span.column, f.code) for f in result.findings]


# --- linting ----------------------------------------------------------------------------------------------------


def test_fixture_positions_are_per_cell_as_ruff_prints_them(run_cli: RunCli, tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "nb.ipynb")
    result = run_cli("--no-cache", "nb.ipynb")
    assert result.exit_code == 1, result.stdout + result.stderr
    [line] = [x for x in result.stdout.splitlines() if "ESP" in x]
    # Cell 4 (the markdown cell counts, as in Jupyter and ruff), line 5 of that cell, column 30.
    assert line.startswith("nb.ipynb:cell 4:5:30: ESP001 Mask function `causal` (line 2 in `build`)")


def test_names_imported_in_an_earlier_cell_resolve(tmp_path: Path) -> None:
    assert findings(write(tmp_path / "a.ipynb", notebook(IMPORTS, "x = 1\n", NESTED))) == [(4, 5, 30, "ESP001")]
    aliased_call = NESTED.replace("create_block_mask", "fa.create_block_mask")
    aliased = notebook("import torch.nn.attention.flex_attention as fa\n", aliased_call)
    assert findings(write(tmp_path / "b.ipynb", aliased)) == [(3, 5, 33, "ESP001")]
    # Without the import the callee is not the API: nothing to report (names resolve, not spellings).
    assert findings(write(tmp_path / "c.ipynb", notebook("x = 1\n", NESTED))) == []


def test_noqa_in_a_cell(tmp_path: Path) -> None:
    suppressed = NESTED.replace("n, n)\n", "n, n)  # noqa: ESP001\n")
    assert findings(write(tmp_path / "a.ipynb", notebook(IMPORTS, suppressed))) == []
    other_code = NESTED.replace("n, n)\n", "n, n)  # noqa: ESP004\n")
    assert findings(write(tmp_path / "b.ipynb", notebook(IMPORTS, other_code))) == [(3, 5, 30, "ESP001")]


def test_magics_and_shell_escapes_are_ignored_and_keep_line_numbers(tmp_path: Path) -> None:
    magics = "%load_ext autoreload\n!pip install torch\nfiles = !ls\ncreate_block_mask?\n??create_block_mask\n"
    indented = NESTED.replace("    return create_block_mask", "    %time x = 1\n    return create_block_mask")
    nb = notebook(IMPORTS, magics, indented, "%%bash\necho 'def (' \n", "%%time\n" + NESTED)
    assert findings(write(tmp_path / "a.ipynb", nb)) == [(4, 6, 30, "ESP001"), (6, 6, 30, "ESP001")]


def test_what_is_not_a_magic_stays_python() -> None:
    cell = 'x = (1\n     % 2)\ns = """\n%d items\n"""\ny = 1  # really?\n'
    python, magics = mask_magics(cell, iter(range(1, 100)))
    assert (python, magics) == (cell, {})
    python, magics = mask_magics("if x:\n    !ls \\\n  -l\n", iter(range(1, 100)))
    assert python == "if x:\n    pass  # esper-lint: magic 1\n  # esper-lint: magic 2\n"
    assert magics == {1: "    !ls \\\n", 2: "  -l\n"}


def test_a_syntax_error_is_reported_in_its_cell(run_cli: RunCli, tmp_path: Path) -> None:
    write(tmp_path / "nb.ipynb", notebook(IMPORTS, "x = 1\n", "def f(:\n    pass\n"))
    result = run_cli("--no-cache", "nb.ipynb")
    assert result.exit_code == 2
    assert "nb.ipynb:cell 4:1:" in result.stderr and "syntax error" in result.stderr


def test_a_notebook_in_another_language_is_not_python(tmp_path: Path) -> None:
    nb = notebook(IMPORTS, NESTED, language_info={"name": "R"})
    assert findings(write(tmp_path / "r.ipynb", nb)) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"cells": [', "not valid JSON (Expecting value at line 1, column 12)"),
        ('{"worksheets": [], "nbformat": 3}', "nbformat 3 is not supported"),
        ("[]", 'not a Jupyter notebook (no "cells" list)'),
        (b"\xff\xfe".decode("latin-1"), "not valid UTF-8"),
    ],
)
def test_an_unreadable_notebook_is_an_error(run_cli: RunCli, tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.ipynb").write_bytes(content.encode("latin-1"))
    (tmp_path / "good.py").write_text(IMPORTS)
    for args in (("bad.ipynb",), ("--fix", "bad.ipynb"), (".",)):
        result = run_cli("--no-cache", *args)
        assert result.exit_code == 2, result.stdout + result.stderr
        assert f"bad.ipynb: notebook error: {message}" in result.stderr
    assert (tmp_path / "bad.ipynb").read_bytes() == content.encode("latin-1")


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n  \n"])
def test_an_empty_notebook_file_is_an_empty_notebook(run_cli: RunCli, tmp_path: Path, content: bytes) -> None:
    # `touch new.ipynb` (or an editor's new file) is no error, as in ruff; nothing is written.
    (tmp_path / "new.ipynb").write_bytes(content)
    for args in (("new.ipynb",), ("--fix", "new.ipynb"), ("--diff", "new.ipynb"), ("--add-noqa", "new.ipynb")):
        result = run_cli("--no-cache", *args)
        assert result.exit_code == 0 and "error" not in result.stderr, (args, result.stdout + result.stderr)
    assert (tmp_path / "new.ipynb").read_bytes() == content


def test_the_walker_finds_notebooks(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    shutil.copy(FIXTURE, tmp_path / "sub" / "nb.ipynb")
    result = run_cli("--no-cache", ".")
    assert result.exit_code == 1 and "sub/nb.ipynb:cell 4:5:30: ESP001" in result.stdout


def test_json_sarif_and_the_cache_carry_the_cell(run_cli: RunCli, tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "nb.ipynb")
    for _ in range(2):  # the second run is served from the cache
        [finding] = json.loads(run_cli("--output-format", "json", "nb.ipynb").stdout)
        assert (finding["cell"], finding["line"], finding["column"]) == (4, 5, 30)
    sarif = json.loads(run_cli("--no-cache", "--output-format", "sarif", "nb.ipynb").stdout)
    [result] = sarif["runs"][0]["results"]
    [location] = result["locations"]
    assert result["properties"]["cell"] == 4
    assert location["physicalLocation"]["region"]["startLine"] == 5
    cell = {"name": "cell 4", "fullyQualifiedName": "nb.ipynb:cell 4", "kind": "module"}
    assert location["logicalLocations"] == [cell]


# --- fixing -----------------------------------------------------------------------------------------------------


def source_span(text: str, cell_index: int) -> tuple[int, int]:
    """Character range of cells[cell_index]["source"]'s value in a notebook's JSON text (found independently)."""
    data = json.loads(text)
    stored = json.dumps(data["cells"][cell_index]["source"], indent=1, ensure_ascii=False)
    # The fixture is written with indent=1: the cell's array is the dump re-indented to its depth.
    indented = stored.replace("\n", "\n   ")
    start = text.index('"source": ' + indented) + len('"source": ')
    return start, start + len(indented)


def assert_only_source_changed(old: bytes, new: bytes, cell_index: int) -> None:
    old_data, new_data = json.loads(old), json.loads(new)
    assert old_data["cells"][cell_index]["source"] != new_data["cells"][cell_index]["source"]
    old_data["cells"][cell_index]["source"] = new_data["cells"][cell_index]["source"]
    assert old_data == new_data  # as objects: nothing else changed
    old_text, new_text = old.decode(), new.decode()
    start, end = source_span(old_text, cell_index)
    new_start, new_end = source_span(new_text, cell_index)
    assert (old_text[:start], old_text[end:]) == (new_text[:new_start], new_text[new_end:])  # as bytes
    nbformat.validate(nbformat.reads(new.decode(), as_version=4))


def test_fix_changes_only_that_cells_source(run_cli: RunCli, tmp_path: Path) -> None:
    target = tmp_path / "nb.ipynb"
    shutil.copy(FIXTURE, target)
    result = run_cli("--no-cache", "--fix", "nb.ipynb")
    assert result.exit_code == 0, result.stdout + result.stderr
    new = target.read_bytes()
    assert_only_source_changed(FIXTURE.read_bytes(), new, 3)
    assert json.loads(new)["cells"][3]["source"] == [
        "def causal(b, h, q_idx, kv_idx):\n",
        "    return q_idx >= kv_idx\n",
        "\n",
        "\n",
        "def build(n):\n",
        '    return create_block_mask(causal, None, None, n, n, device="cpu")',  # no final newline, as before
    ]
    assert run_cli("--no-cache", "nb.ipynb").exit_code == 0


def test_fix_keeps_string_sources_magics_and_non_ascii(tmp_path: Path, run_cli: RunCli) -> None:
    cell = NESTED.replace("    return create_block_mask", "    %time x = 'é'\n    return create_block_mask")
    nb = notebook(IMPORTS, cell)
    nb["cells"][2]["source"] = cell  # stored as one string
    nb["metadata"] = {"note": "café", "ratio": 1.5e-05}
    text = json.dumps(nb, indent=2, ensure_ascii=True)  # another writer's layout, no final newline
    (tmp_path / "nb.ipynb").write_text(text)
    assert run_cli("--no-cache", "--fix", "nb.ipynb").exit_code == 0
    new = (tmp_path / "nb.ipynb").read_text()
    assert new.isascii() and "1.5e-05" in new and not new.endswith("\n")
    assert json.loads(new)["cells"][2]["source"] == (
        "def causal(b, h, q_idx, kv_idx):\n    return q_idx >= kv_idx\n\n\n"
        "def build(n):\n    %time x = 'é'\n    return create_block_mask(causal, None, None, n, n)\n"
    )
    old_data, new_data = json.loads(text), json.loads(new)
    old_data["cells"][2]["source"] = new_data["cells"][2]["source"]
    assert old_data == new_data


def test_the_hoist_stays_in_its_cell(tmp_path: Path, run_cli: RunCli) -> None:
    # The nested function's enclosing statement is the first of its cell: the function must land in that cell,
    # not at the end of the previous one, which ends in a comment.
    nb = notebook(IMPORTS + "# end of cell 2\n", NESTED, "build(8)\n", markdown_first=False)
    write(tmp_path / "nb.ipynb", nb)
    old = (tmp_path / "nb.ipynb").read_bytes()
    assert run_cli("--no-cache", "--fix", "nb.ipynb").exit_code == 0
    new = (tmp_path / "nb.ipynb").read_bytes()
    assert_only_source_changed(old, new, 1)
    assert "".join(json.loads(new)["cells"][1]["source"]).startswith("def causal(")


def test_diff_shows_the_cell_and_writes_nothing(run_cli: RunCli, tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "nb.ipynb")
    result = run_cli("--no-cache", "--diff", "nb.ipynb")
    assert result.exit_code == 1
    assert result.stdout.startswith("--- a/nb.ipynb:cell 4\n+++ b/nb.ipynb:cell 4\n@@ ")
    assert "+def causal(b, h, q_idx, kv_idx):\n" in result.stdout
    assert (tmp_path / "nb.ipynb").read_bytes() == FIXTURE.read_bytes()


def test_loaded_cells_are_the_code_cells(tmp_path: Path) -> None:
    loaded = load(FIXTURE.read_bytes(), str(FIXTURE))
    assert loaded is not None
    assert [c.number for c in loaded.cells] == [2, 3, 4, 5, 7, 8]
    assert loaded.locate(1) == (2, 1)


def test_a_fix_that_cannot_be_cut_back_into_cells_is_refused(run_cli: RunCli, tmp_path: Path) -> None:
    # A cell that spells the joined module's boundary marker itself: the fix cannot be split back for certain.
    nb = notebook(IMPORTS, NESTED, '"esper-lint: notebook cell 2"\n')
    old = write(tmp_path / "nb.ipynb", nb).read_bytes()
    result = run_cli("--no-cache", "--fix", "nb.ipynb")
    assert result.exit_code == 2
    assert "could not fix this notebook (a cell boundary moved); it was left unchanged" in result.stderr
    assert "nb.ipynb:cell 3:5:30: ESP001" in result.stdout
    assert (tmp_path / "nb.ipynb").read_bytes() == old


@pytest.mark.parametrize(
    "dump",
    [
        pytest.param(lambda nb: json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n", id="jupyter"),
        pytest.param(lambda nb: json.dumps(nb, indent=4), id="indent-4-ascii"),
        pytest.param(lambda nb: json.dumps(nb), id="one-line"),
        pytest.param(lambda nb: json.dumps(nb, separators=(",", ":")), id="compact"),
    ],
)
def test_fix_keeps_each_writers_layout(run_cli: RunCli, tmp_path: Path, dump: Any) -> None:
    nb = notebook(IMPORTS, NESTED.replace("\n", "\r\n"), "print('ünïcode', 1.0e-5)\n")
    nb["cells"][3]["outputs"] = [{"name": "stdout", "output_type": "stream", "text": ["ünïcode 1e-05\n"]}]
    old = dump(nb).encode()
    (tmp_path / "nb.ipynb").write_bytes(old)
    assert run_cli("--no-cache", "--fix", "nb.ipynb").exit_code == 0
    new = (tmp_path / "nb.ipynb").read_bytes()
    changed = json.loads(new)["cells"][2]["source"]
    assert changed[:3] == ["def causal(b, h, q_idx, kv_idx):\r\n", "    return q_idx >= kv_idx\r\n", "\r\n"]
    # Outside the cell's source array, every byte is as it was.
    prefix = len(old[: old.index(b"def build")].rsplit(b"[", 1)[0])
    suffix = len(old) - old.index(b"]", old.index(b"n, n)"))
    assert new[:prefix] == old[:prefix] and new[-suffix:] == old[-suffix:]
    nbformat.validate(nbformat.reads(new.decode(), as_version=4))


def run_cells(cells: list[str], first: int) -> dict[str, Any]:
    """Execute cells[first:] in a fresh namespace, with a stand-in for create_block_mask (no torch needed)."""
    namespace: dict[str, Any] = {
        "create_block_mask": lambda mask, b, h, q_len, kv_len: [
            [mask(0, 0, q, kv) for kv in range(kv_len)] for q in range(q_len)
        ]
    }
    for cell in cells[first:]:
        exec(compile(cell, "<cell>", "exec"), namespace)
    return namespace


def test_identical_functions_in_two_cells_each_stay_in_their_cell(run_cli: RunCli, tmp_path: Path) -> None:
    # The fixer shares one definition between identical hoisted functions; across cells that would make cell 3
    # depend on cell 2. Each cell must get its own definition and still run alone.
    build2 = NESTED.replace("def build(", "def build2(")
    write(tmp_path / "nb.ipynb", notebook(IMPORTS, NESTED, build2, markdown_first=False))
    assert run_cli("--no-cache", "--fix", "nb.ipynb").exit_code == 0
    cells = ["".join(c["source"]) for c in json.loads((tmp_path / "nb.ipynb").read_text())["cells"]]
    assert cells[1].startswith("def causal(") and cells[2].startswith("def causal_2(")
    before = run_cells(["", NESTED, build2], 1)
    after = run_cells(cells, 1)
    assert after["build"](4) == before["build"](4) and after["build2"](4) == before["build2"](4)
    assert run_cells(cells, 2)["build2"](4) == before["build2"](4)  # cell 3 alone
    assert run_cli("--no-cache", "nb.ipynb").exit_code == 0


def test_top_level_await_is_not_fixed_and_says_why(run_cli: RunCli, tmp_path: Path) -> None:
    nb = notebook(IMPORTS, NESTED, "import asyncio\nawait asyncio.sleep(0)\n")
    old = write(tmp_path / "nb.ipynb", nb).read_bytes()
    assert run_cli("--no-cache", "nb.ipynb").exit_code == 1  # linting is unaffected
    result = run_cli("--no-cache", "--fix", "nb.ipynb")
    assert result.exit_code == 2 and "uses top-level `await`" in result.stderr
    assert (tmp_path / "nb.ipynb").read_bytes() == old


def test_github_annotations_name_the_cell_in_the_text(run_cli: RunCli, tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "nb.ipynb")
    [line] = run_cli("--no-cache", "--output-format", "github", "nb.ipynb").stdout.splitlines()
    assert line.startswith("::error file=nb.ipynb,title=")  # no line: the cell's lines are not the file's
    assert "::nb.ipynb:cell 4:5:30: ESP001 " in line


def test_stdin_with_a_notebook_filename(run_cli: RunCli, tmp_path: Path) -> None:
    source = FIXTURE.read_text(encoding="utf-8")
    checked = run_cli("-", "--stdin-filename", "nb.ipynb", stdin=source)
    assert checked.exit_code == 1 and "nb.ipynb:cell 4:5:30: ESP001" in checked.stdout
    fixed = run_cli("-", "--stdin-filename", "nb.ipynb", "--fix", stdin=source)
    assert fixed.exit_code == 0
    assert_only_source_changed(source.encode(), fixed.stdout.encode(), 3)


def test_add_noqa_writes_the_comment_into_the_cell(run_cli: RunCli, tmp_path: Path) -> None:
    # The comment goes into the cell's `source` (magics kept), never the notebook rewritten as Python text.
    cell = NESTED.replace("    return create_block_mask", "    %time x = 1\n    return create_block_mask")
    write(tmp_path / "nb.ipynb", notebook(IMPORTS, cell))
    old = (tmp_path / "nb.ipynb").read_bytes()
    result = run_cli("--no-cache", "--add-noqa", "nb.ipynb")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Added 1 noqa directive.\n", "")
    new = (tmp_path / "nb.ipynb").read_bytes()
    assert_only_source_changed(old, new, 2)
    assert json.loads(new)["cells"][2]["source"] == [
        "def build(n):\n",
        "    def causal(b, h, q_idx, kv_idx):\n",
        "        return q_idx >= kv_idx\n",
        "\n",
        "    %time x = 1\n",
        "    return create_block_mask(causal, None, None, n, n)  # noqa: ESP001\n",
    ]
    assert run_cli("--no-cache", "nb.ipynb").exit_code == 0


def test_a_named_notebook_is_checked_without_a_warning(run_cli: RunCli, tmp_path: Path) -> None:
    shutil.copy(FIXTURE, tmp_path / "nb.ipynb")
    result = run_cli("--no-cache", "nb.ipynb")
    assert result.stderr == ""


def test_a_text_edit_fix_may_read_a_module_an_earlier_cell_imports(run_cli: RunCli, tmp_path: Path) -> None:
    # ESP010's fix reads `torch`, imported in cell 1: the kernel has it, so the cell is fixed (was: left
    # unfixed by --fix while the finding still said "fixable").
    compiled = (
        "def causal(b, h, q_idx, kv_idx):\n    return q_idx >= kv_idx\n\n\n"
        "m = create_block_mask(causal, None, None, 128, 128, _compile=True)\n"
    )
    write(tmp_path / "nb.ipynb", notebook("import torch\n" + IMPORTS, compiled))
    old = (tmp_path / "nb.ipynb").read_bytes()
    assert run_cli("--no-cache", "--fix", "nb.ipynb").exit_code == 0
    new = (tmp_path / "nb.ipynb").read_bytes()
    assert_only_source_changed(old, new, 2)
    assert (
        json.loads(new)["cells"][2]["source"][-1]
        == "m = torch.compile(create_block_mask)(causal, None, None, 128, 128)\n"
    )


def test_diff_reports_what_remains_where_it_is_in_the_cell_on_disk(run_cli: RunCli, tmp_path: Path) -> None:
    # The hoist adds lines above `swapped` in the same cell: --diff must give ESP014's line as the cell has it
    # now (it gave the fixed cell's line).
    cell = NESTED + "\n\ndef swapped(b, h, kv_idx, q_idx):\n    return kv_idx <= q_idx\n\n\n"
    cell += "ms = create_block_mask(swapped, None, None, 128, 128)\n"
    write(tmp_path / "nb.ipynb", notebook(IMPORTS, cell))
    assert findings(tmp_path / "nb.ipynb") == [(3, 5, 30, "ESP001"), (3, 8, 5, "ESP014")]
    result = run_cli("--no-cache", "--diff", "--output-format", "json", "nb.ipynb")
    assert result.exit_code == 1 and "+def causal(" in result.stdout
    remaining = json.loads(result.stdout[result.stdout.index("\n[") + 1 :])
    assert [(f["cell"], f["line"], f["column"], f["code"]) for f in remaining] == [(3, 8, 5, "ESP014")]


def test_unsafe_fixes_apply_in_a_notebook(run_cli: RunCli, tmp_path: Path) -> None:
    # ESP009's unsafe fix: with --unsafe-fixes the cell is fixed (it was an internal error: the cell "had
    # nothing to fix" as unsafe findings did not count as fixable); without it, nothing changes.
    cell = (
        "def causal(b, h, q_idx, kv_idx):\n    return q_idx >= kv_idx\n\n\n"
        "def wasteful(q, k, v):\n    block_mask = create_block_mask(causal, 8, 16, 4096, 4096)\n"
        "    return flex_attention(q, k, v, block_mask=block_mask)\n"
    )
    write(
        tmp_path / "nb.ipynb", notebook(IMPORTS.replace("create_block_mask", "create_block_mask, flex_attention"), cell)
    )
    old = (tmp_path / "nb.ipynb").read_bytes()
    plain = run_cli("--no-cache", "--fix", "nb.ipynb")
    assert plain.exit_code == 1 and plain.stderr == "" and (tmp_path / "nb.ipynb").read_bytes() == old
    unsafe = run_cli("--no-cache", "--fix", "--unsafe-fixes", "nb.ipynb")
    assert (unsafe.exit_code, unsafe.stderr) == (0, ""), unsafe.stdout + unsafe.stderr
    new = (tmp_path / "nb.ipynb").read_bytes()
    assert_only_source_changed(old, new, 2)
    assert (
        "    block_mask = create_block_mask(causal, None, None, 4096, 4096)\n" in json.loads(new)["cells"][2]["source"]
    )


def test_jupyter_checkpoints_are_not_walked(run_cli: RunCli, tmp_path: Path) -> None:
    # Jupyter autosaves a copy of each notebook in .ipynb_checkpoints/: a second finding, and --fix would
    # rewrite the copy (ruff excludes the folder by default too).
    (tmp_path / ".ipynb_checkpoints").mkdir()
    shutil.copy(FIXTURE, tmp_path / "nb.ipynb")
    shutil.copy(FIXTURE, tmp_path / ".ipynb_checkpoints" / "nb-checkpoint.ipynb")
    result = run_cli("--no-cache", "--output-format", "json", ".")
    assert [f["path"] for f in json.loads(result.stdout)] == ["nb.ipynb"]


def test_a_syntax_error_in_one_cell_leaves_the_other_cells_checked(run_cli: RunCli, tmp_path: Path) -> None:
    """As ruff: the broken cell is reported as a syntax error of its own, the other cells are still checked."""
    nb = write(tmp_path / "nb.ipynb", notebook(IMPORTS, "x = (1,\n", NESTED, "def f(:\n    pass\n"))
    result = lint_notebook(nb.read_bytes(), str(nb), Config(root=tmp_path))
    assert [(f.cell, f.span.line, f.code) for f in result.findings] == [(4, 5, "ESP001")]
    assert [(e.kind, e.cell, e.line) for e in result.errors] == [("syntax-error", 3, 1), ("syntax-error", 5, 1)]
    assert all("this cell was not checked (the notebook's other cells were)" in e.message for e in result.errors)
    cli = run_cli("--no-cache", "nb.ipynb")
    assert cli.exit_code == 2  # a file (here: two cells of it) that could not be checked
    assert "nb.ipynb:cell 4:5:30: ESP001" in cli.stdout
    assert "nb.ipynb:cell 5:1:" in cli.stderr and "nb.ipynb:cell 3:1:" in cli.stderr
    # --fix leaves a notebook it cannot compile unchanged, and says what the other cells hold.
    before = nb.read_bytes()
    fixed = run_cli("--no-cache", "--fix", "nb.ipynb")
    assert nb.read_bytes() == before and fixed.exit_code == 2
    assert "nb.ipynb:cell 4:5:30: ESP001" in fixed.stdout


def test_each_fix_round_analyses_its_module_once_as_a_file_fix_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notebook is a source, not a second pipeline: its module goes through the fixer as a file does, each
    round analyses its module once (none when the previous round verified that very module) and the fixer
    verifies what it made once, as for a file; no text is analysed twice. (The notebook's own pipeline linted
    each text again after fixing it: 9 analyses for the second notebook here, where 5 are needed.)"""
    analysed: list[str] = []
    rounds: list[tuple[str, str | None]] = []  # each round's module, and the module it fixed it into
    analyze_fast, fix_round = engine.analyze_fast, file_fixer.fix_round

    def counted(tree: Any, text: str, path: str, config: Config) -> Any:
        analysed.append(text)
        return analyze_fast(tree, text, path, config)

    def recorded(source: bytes, path: str, config: Config, analysis: Any = None) -> file_fixer.FixRound:
        outcome = fix_round(source, path, config, analysis)
        new = outcome.result.new_source
        rounds.append((source.decode(), None if new is None else new.decode()))
        return outcome

    monkeypatch.setattr(engine, "analyze_fast", counted)
    monkeypatch.setattr(file_fixer, "fix_round", recorded)
    config = Config(root=tmp_path)
    build2 = NESTED.replace("def build(", "def build2(")  # cell 3 waits a round for its own `causal`
    for source in (FIXTURE.read_bytes(), json.dumps(notebook(IMPORTS, NESTED, build2)).encode()):
        loaded = load(source, "nb.ipynb")
        assert loaded is not None
        analysed.clear()
        assert lint_notebook(source, "nb.ipynb", config).findings
        assert analysed == [loaded.python]
        analysed.clear()
        fix_source(loaded.python.encode(), "nb.py", config)
        as_a_file = list(analysed)
        analysed.clear()
        assert fix_notebook(source, "nb.ipynb", config).new_source is not None
        expected: list[str] = []
        for module, fixed in rounds:
            if not expected or expected[-1] != module:
                expected.append(module)
            if fixed is not None:
                expected.append(fixed)
        assert len(rounds) >= 2 and analysed == expected
        assert analysed[: len(as_a_file)] == as_a_file  # the first round is the file's fix
        assert len(set(analysed)) == len(analysed)
        rounds.clear()
