"""ESP010 on a compiled alias (issue 21): the fix deletes `_compile=True` where the callee is certainly
`torch.compile(create_block_mask, ...)`, offers nothing where it only may be, and the fixed program does
what the original did (run before and after with torch)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import lint_snippet

from esper_lint.config import Config
from esper_lint.core.findings import FileResult
from esper_lint.fix.file_fixer import fix_source

HEADER = """\
import torch
from torch.nn.attention.flex_attention import create_block_mask
"""


def _fix(source: str) -> FileResult:
    text = HEADER + textwrap.dedent(source)
    return fix_source(text.encode(), "snippet.py", Config(root=Path.cwd()))


def _esp010(result: FileResult) -> list[str]:
    return [f.message for f in result.findings if f.code == "ESP010"]


def test_the_fix_deletes_the_flag_on_a_module_level_compiled_alias() -> None:
    source = """
        create_block_mask = torch.compile(create_block_mask, dynamic=False)

        def build(mask_mod, n):
            return create_block_mask(mask_mod, None, None, n, n, _compile=True)
        """
    result = _fix(source)
    assert result.new_source is not None
    fixed = result.new_source.decode()
    assert (
        "create_block_mask(mask_mod, None, None, n, n)\n" in fixed and "torch.compile(create_block_mask)(" not in fixed
    )
    [finding] = [f for f in lint_snippet(HEADER + textwrap.dedent(source)) if f.code == "ESP010"]
    assert finding.fixable
    assert "already `torch.compile(...)` (line 4)" in finding.message and "drop the options" in finding.message


@pytest.mark.parametrize(
    "source",
    [
        # The alias may not have run: under an `if`.
        """
        if torch.cuda.is_available():
            create_block_mask = torch.compile(create_block_mask, dynamic=False)

        def build(mask_mod, n):
            return create_block_mask(mask_mod, None, None, n, n, _compile=True)
        """,
        # The call's function is defined before the alias: it could run before it.
        """
        def build(mask_mod, n):
            return create_block_mask(mask_mod, None, None, n, n, _compile=True)

        create_block_mask = torch.compile(create_block_mask, dynamic=False)
        """,
        # Rebound again somewhere: not certainly the compiled one.
        """
        create_block_mask = torch.compile(create_block_mask, dynamic=False)

        def build(mask_mod, n):
            return create_block_mask(mask_mod, None, None, n, n, _compile=True)

        def reset():
            global create_block_mask
            create_block_mask = None
        """,
    ],
)
def test_no_fix_where_the_callee_only_may_be_compiled(source: str) -> None:
    result = _fix(source)
    assert result.new_source is None  # neither wrapped again nor deleted
    [message] = _esp010(result)
    # Not "compile it" alone: where the callee is compiled, compiling again unwraps it and drops its options.
    assert "may already be `torch.compile(...)`: then delete `_compile` by hand" in message


def test_a_local_alias_made_before_the_call_is_certain() -> None:
    result = _fix(
        """
        def build(mask_mod, n):
            cbm = torch.compile(create_block_mask)
            return cbm(mask_mod, None, None, n, n, _compile=True)
        """
    )
    assert result.new_source is not None
    assert "return cbm(mask_mod, None, None, n, n)\n" in result.new_source.decode()


PROGRAM = (
    HEADER
    + """\
import warnings

warnings.simplefilter("ignore")
graphs = []


def recording(gm, inputs):  # counts the graphs compiled with the alias's own options
    sizes = [d for x in inputs if isinstance(x, torch.Tensor) for d in x.shape]
    graphs.append(any(isinstance(s, torch.SymInt) for s in [*sizes, *inputs]))
    return gm.forward


create_block_mask = torch.compile(create_block_mask, dynamic=False, backend=recording)


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def build(n):
    return create_block_mask(causal, None, None, n, n, device="cpu", _compile=True)


for n in (128, 256):
    mask = build(n)
    print(n, mask.kv_num_blocks.tolist(), mask.kv_indices.tolist(), mask.to_dense().sum().item())
print("graphs", graphs)
"""
)


@pytest.mark.torch
def test_fixed_program_builds_the_same_block_masks_with_the_same_compiled_graphs(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="needs the `harness` extra (torch)")
    result = fix_source(PROGRAM.encode(), "program.py", Config(root=tmp_path))
    assert result.new_source is not None
    fixed = result.new_source.decode()
    assert "_compile" not in fixed and fixed.count("torch.compile(") == 1

    def run(source: str) -> str:
        path = tmp_path / "program.py"
        path.write_text(source, encoding="utf-8")
        done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=600, check=True)
        return done.stdout

    before, after = run(PROGRAM), run(fixed)
    assert before == after
    assert "graphs [False, False]" in after  # the alias's options (its backend, dynamic=False) still apply
