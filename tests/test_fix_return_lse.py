"""ESP027's fix: `return_lse=True` -> `return_aux=AuxRequest(lse=True)` and `.lse`, `return_lse=False` removed.

The text of each rewrite, the places it declines (and says so), and, with torch, programs run before and
after `--fix` printing the same tensors.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from esper_lint.config import Config
from esper_lint.core.findings import FileResult
from esper_lint.engine import lint_source
from esper_lint.fix.file_fixer import fix_source
from esper_lint.notebook import fix_notebook

CONFIG = Config(root=Path.cwd())
HEADER = "from torch.nn.attention.flex_attention import create_block_mask, flex_attention\n"


def _fix(source: str) -> FileResult:
    return fix_source(textwrap.dedent(source).encode(), "attend.py", CONFIG)


def _fixed(source: str) -> str:
    result = _fix(source)
    assert not result.errors, result.errors
    assert result.new_source is not None, [f.message for f in result.findings]
    fixed = result.new_source.decode()
    again = fix_source(fixed.encode(), "attend.py", CONFIG)
    assert again.new_source is None and not [f for f in again.findings if f.code == "ESP027"]  # idempotent
    return fixed


def _declined(source: str) -> str:
    """The message of the one ESP027 finding, which must not be fixable (and nothing changes)."""
    result = _fix(source)
    assert result.new_source is None
    [finding] = [f for f in result.findings if f.code == "ESP027"]
    assert not finding.fixable
    return finding.message


def test_the_import_gains_auxrequest_and_lse_is_read_from_the_aux_output() -> None:
    source = HEADER + textwrap.dedent("""\

        def attend(q, k, v):
            out, lse = flex_attention(q, k, v, return_lse=True)  # keep this comment
            return out, lse
        """)
    assert _fixed(source) == (
        "from torch.nn.attention.flex_attention import AuxRequest, create_block_mask, flex_attention\n"
        + textwrap.dedent("""\

            def attend(q, k, v):
                out, lse = flex_attention(q, k, v, return_aux=AuxRequest(lse=True))  # keep this comment
                lse = lse.lse
                return out, lse
            """)
    )


def test_module_attribute_callee_names_auxrequest_through_the_module() -> None:
    source = """\
        import torch.nn.attention.flex_attention as fa


        class Layer:
            def attend(self, q, k, v):
                out, lse = fa.flex_attention(
                    q,
                    k,
                    v,
                    return_lse=True,
                )
                return out, lse
        """
    fixed = _fixed(source)
    assert "return_aux=fa.AuxRequest(lse=True),\n        )\n        lse = lse.lse\n" in fixed
    assert fixed.startswith("import torch.nn.attention.flex_attention as fa\n")  # no import added


def test_an_existing_auxrequest_import_is_used() -> None:
    source = """\
        from torch.nn.attention import flex_attention as fa
        from torch.nn.attention.flex_attention import AuxRequest as Aux


        def attend(q, k, v):
            from torch.nn.attention.flex_attention import AuxRequest

            o, m = fa.flex_attention(q, k, v, return_aux=Aux(max_scores=True))
            out, lse = fa.flex_attention(q, k, v, return_lse=True)
            return out, lse, m
        """
    fixed = _fixed(source)
    assert "out, lse = fa.flex_attention(q, k, v, return_aux=AuxRequest(lse=True))\n    lse = lse.lse\n" in fixed


def test_crlf_line_endings_are_kept() -> None:
    source = HEADER + "def attend(q, k, v):\n    out, lse = flex_attention(q, k, v, return_lse=True)\n    return lse\n"
    result = fix_source(source.replace("\n", "\r\n").encode(), "attend.py", CONFIG)
    assert result.new_source is not None
    fixed = result.new_source.decode()
    assert "return_aux=AuxRequest(lse=True))\r\n    lse = lse.lse\r\n    return lse\r\n" in fixed
    assert "\n" not in fixed.replace("\r\n", "")


def test_return_lse_false_is_dropped() -> None:
    source = HEADER + "def attend(q, k, v):\n    return flex_attention(q, k, v, return_lse=False)\n"
    assert _fixed(source).endswith("    return flex_attention(q, k, v)\n")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("    result = flex_attention(q, k, v, return_lse=True)\n    return result\n", "not unpacked"),
        ("    out, lse = flex_attention(q, k, v, return_lse=flag)\n    return lse\n", "not the literal"),
        ("    out, lse = flex_attention(q, k, v, None, None, None, False, True)\n    return lse\n", "by position"),
        ("    out, lse = flex_attention(q, k, v, return_lse=True); x = 1\n    return lse\n", "not unpacked"),
        ("    if flag: out, lse = flex_attention(q, k, v, return_lse=True)\n    return lse\n", "not unpacked"),
        ("    (out, lse), extra = flex_attention(q, k, v, return_lse=True), 1\n    return lse\n", "not unpacked"),
    ],
    ids=["kept-whole", "variable", "positional", "semicolon", "one-line-if", "nested"],
)
def test_no_fix_where_the_rewrite_is_not_provably_the_same(body: str, why: str) -> None:
    source = HEADER + "def attend(q, k, v, flag):\n" + body
    message = _declined(source)
    assert "change it by hand" in message or "ValueError" in message, (why, message)


@pytest.mark.parametrize(
    "source",
    [
        # `AuxRequest` means something else somewhere in the file: adding the import could change it.
        HEADER + "AuxRequest = dict\n\ndef attend(q, k, v):\n    out, lse = flex_attention(q, k, v, return_lse=True)\n",
        HEADER + "def attend(q, k, v, AuxRequest=None):\n    out, lse = flex_attention(q, k, v, return_lse=True)\n",
        HEADER + "# see AuxRequest\ndef attend(q, k, v):\n    out, lse = flex_attention(q, k, v, return_lse=True)\n",
        # flex_attention is imported in the function only: no module-level import to extend.
        "def attend(q, k, v):\n    from torch.nn.attention.flex_attention import flex_attention\n"
        "    out, lse = flex_attention(q, k, v, return_lse=True)\n",
        # the module-level import comes after the call's top-level statement.
        "def attend(q, k, v):\n    out, lse = flex_attention(q, k, v, return_lse=True)\n\n\n" + HEADER,
    ],
    ids=["module-name", "parameter", "comment", "local-import", "import-after"],
)
def test_no_fix_when_auxrequest_cannot_be_named_safely(source: str) -> None:
    result = _fix(source)
    assert result.new_source is None
    checked = lint_source(textwrap.dedent(source).encode(), "attend.py", CONFIG)
    found = [f for f in checked.findings if f.code == "ESP027"]
    assert found and not any(f.fixable for f in found)


# ----------------------------------------------------------------------------- programs, before and after
PROGRAM = """\
import warnings

import torch
import torch.nn.attention.flex_attention as fa
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def digest(t):
    return round(float(t.double().sum()), 6), tuple(t.shape), str(t.dtype)


torch.manual_seed(0)
q, k, v = (torch.randn(1, 2, 128, 16) for _ in range(3))
block_mask = create_block_mask(causal, None, None, 128, 128, device="cpu")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # "flex_attention called without torch.compile()"
    out, lse = flex_attention(q, k, v, block_mask=block_mask, return_lse=True)
    print(digest(out), digest(lse), type(lse).__name__)


    class Layer:
        def __call__(self, q, k, v):
            result, logsumexp = fa.flex_attention(
                q, k, v, block_mask=block_mask, return_lse=True  # module attribute
            )
            return result, logsumexp

    result, logsumexp = Layer()(q, k, v)
    print(digest(result), digest(logsumexp), torch.equal(lse, logsumexp))
    plain = flex_attention(q, k, v, block_mask=block_mask, return_lse=False)
    print(digest(plain), torch.equal(plain, out))
"""


@pytest.mark.torch
def test_fixed_program_prints_the_same_tensors_without_the_warning(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="needs the `harness` extra (torch)")
    result = fix_source(PROGRAM.encode(), "program.py", CONFIG)
    assert not result.errors and result.new_source is not None
    fixed = result.new_source.decode()
    assert "return_lse" not in fixed
    assert "from torch.nn.attention.flex_attention import AuxRequest, create_block_mask, flex_attention" in fixed
    assert "return_aux=fa.AuxRequest(lse=True)" in fixed or "return_aux=AuxRequest(lse=True)" in fixed

    def run(source: str, name: str) -> subprocess.CompletedProcess[str]:
        path = tmp_path / name
        path.write_text(source, encoding="utf-8")
        return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=600, check=True)

    before, after = run(PROGRAM, "before.py"), run(fixed, "after.py")
    assert before.stdout == after.stdout and "Tensor" in before.stdout
    assert "return_lse is deprecated" in before.stderr and "return_lse is deprecated" not in after.stderr


def _notebook(*cells: str) -> bytes:
    code = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c} for c in cells]
    return json.dumps({"cells": code, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1).encode()


def test_in_a_notebook_the_fix_stays_in_the_cell_of_the_finding() -> None:
    call = "def attend(q, k, v):\n    out, lse = flex_attention(q, k, v, return_lse=True)\n    return out, lse"
    # The import to extend is in another cell: a notebook fix changes only cells with a finding.
    other_cell = _notebook("from torch.nn.attention.flex_attention import flex_attention\n", call)
    result = fix_notebook(other_cell, "n.ipynb", CONFIG)
    assert result.new_source is None and not result.errors
    assert [(f.code, f.fixable, "change it by hand" in f.message) for f in result.findings] == [("ESP027", False, True)]
    # AuxRequest already imported: the rewrite is in the call's own cell.
    imported = _notebook("from torch.nn.attention.flex_attention import AuxRequest, flex_attention\n", call)
    fixed = fix_notebook(imported, "n.ipynb", CONFIG)
    assert fixed.new_source is not None and not fixed.errors and not fixed.findings
    cells = ["".join(c["source"]) for c in json.loads(fixed.new_source)["cells"]]
    assert cells[1] == call.replace("return_lse=True)", "return_aux=AuxRequest(lse=True))\n    lse = lse.lse")
