"""Text-edit fixes (esper_lint/fix/edits.py): ESP010 and ESP013 (safe), ESP009 (unsafe, --unsafe-fixes only)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import RunCli

from esper_lint.config import Config, apply_cli
from esper_lint.core.findings import FileResult
from esper_lint.core.fixes import Edit
from esper_lint.core.span import Span
from esper_lint.fix.edits import apply_to_text
from esper_lint.fix.file_fixer import fix_source

HEADER = """\
import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx

"""


def _fix(source: str, unsafe: bool = False, encoding: str = "utf-8") -> FileResult:
    config = apply_cli(Config(root=Path.cwd()), unsafe_fixes=unsafe or None)
    return fix_source(source.encode(encoding), "snippet.py", config)


def _fixed(source: str, unsafe: bool = False) -> str:
    result = _fix(source, unsafe)
    assert not result.errors, result.errors
    assert result.new_source is not None, "expected a change"
    return result.new_source.decode()


def test_esp010_becomes_torch_compile_of_create_block_mask() -> None:
    source = HEADER + 'mask = create_block_mask(causal, None, None, 256, 256, device="cpu", _compile=True)\n'
    fixed = _fixed(source)
    assert fixed == HEADER + 'mask = torch.compile(create_block_mask)(causal, None, None, 256, 256, device="cpu")\n'
    assert _fix(fixed).new_source is None  # idempotent: nothing left to fix


def test_esp010_multiline_call_with_attribute_callee() -> None:
    source = textwrap.dedent("""\
        import torch
        from torch.nn.attention import flex_attention as fa

        def build(mask_mod, n):
            return fa.create_block_mask(
                mask_mod,
                None,
                None,
                n,
                n,
                _compile=True,
            )
        """)
    fixed = _fixed(source)
    assert "torch.compile(fa.create_block_mask)(" in fixed and "_compile" not in fixed
    assert fixed.endswith("        n,\n        n,\n    )\n")  # the trailing comma and layout of the rest are kept


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (
            "from torch.nn.attention.flex_attention import create_block_mask\n"
            "m = create_block_mask(f, None, None, 8, 8, _compile=True)\n",
            "`torch` is not imported",
        ),
        (
            "import torch\nfrom torch.nn.attention.flex_attention import create_block_mask\n"
            "def build(torch, f):\n    return create_block_mask(f, None, None, 8, 8, _compile=True)\n",
            "`torch` is a parameter here",
        ),
        (
            "import torch\nfrom torch.nn.attention.flex_attention import create_block_mask\n"
            "m = create_block_mask(f, None, None, 8, 8,  # sizes\n    _compile=True)\n",
            "a comment sits next to the keyword",
        ),
        (
            "import torch\nfrom torch.nn.attention.flex_attention import create_block_mask\n"
            "m = create_block_mask(f, None, None, 8, 8, _compile=flag)\n",
            "the flag is not the literal True",
        ),
        (
            "from torch.nn.attention.flex_attention import create_block_mask\n"
            "def build(f):\n    m = create_block_mask(f, None, None, 8, 8, _compile=True)\n    import torch\n",
            "`torch` is imported in the function only after the call",
        ),
    ],
    ids=["no-torch", "torch-shadowed", "comment", "variable", "imported-later"],
)
def test_esp010_no_fix_when_not_provably_the_same(source: str, why: str) -> None:
    result = _fix(source)
    assert result.new_source is None, why
    [finding] = [f for f in result.findings if f.code == "ESP010"]
    assert not finding.fixable and "change it by hand" in finding.message


def test_esp013_positional_block_mask_becomes_keyword() -> None:
    body = textwrap.dedent("""\
        def attend(q, k, v):
            block_mask = create_block_mask(causal, None, None, q.shape[-2], k.shape[-2])
            return flex_attention(q, k, v, block_mask)
        """)
    fixed = _fixed(HEADER + body)
    assert fixed.endswith("return flex_attention(q, k, v, block_mask=block_mask)\n")
    assert _fix(fixed).new_source is None


def test_esp013_no_fix_when_another_positional_follows() -> None:
    body = textwrap.dedent("""\
        def attend(q, k, v, other):
            block_mask = create_block_mask(causal, None, None, q.shape[-2], k.shape[-2])
            return flex_attention(q, k, v, block_mask, other)
        """)
    result = _fix(HEADER + body)
    assert result.new_source is None
    assert [f.fixable for f in result.findings if f.code == "ESP013"] == [False]


ESP009_SOURCE = HEADER + textwrap.dedent("""\
    def attend(q, k, v):
        block_mask = create_block_mask(causal, 8, None, 128, 128)
        return flex_attention(q, k, v, block_mask=block_mask)
    """)


def test_esp009_fix_is_applied_only_with_unsafe_fixes() -> None:
    result = _fix(ESP009_SOURCE)
    assert result.new_source is None
    [finding] = [f for f in result.findings if f.code == "ESP009"]
    assert not finding.fixable
    fixed = _fixed(ESP009_SOURCE, unsafe=True)
    assert "create_block_mask(causal, None, None, 128, 128)" in fixed
    assert not [f for f in _fix(fixed, unsafe=True).findings if f.code == "ESP009"]


def test_diff_shows_unsafe_fixes_only_with_the_flag(run_cli: RunCli, tmp_path: Path) -> None:
    (tmp_path / "attend.py").write_text(ESP009_SOURCE, encoding="utf-8")
    plain = run_cli("--diff", "--no-cache", "attend.py")
    assert "+    block_mask = create_block_mask(causal, None" not in plain.stdout
    unsafe = run_cli("--diff", "--unsafe-fixes", "--no-cache", "attend.py")
    assert "+    block_mask = create_block_mask(causal, None, None, 128, 128)" in unsafe.stdout
    assert unsafe.exit_code == 1
    assert (tmp_path / "attend.py").read_text(encoding="utf-8") == ESP009_SOURCE  # --diff writes nothing
    fixed = run_cli("--fix", "--unsafe-fixes", "--no-cache", "attend.py")
    assert fixed.exit_code == 0, fixed.stdout
    assert "create_block_mask(causal, None, None, 128, 128)" in (tmp_path / "attend.py").read_text(encoding="utf-8")


def test_with_unsafe_fixes_the_unsafe_ones_count_as_fixable(run_cli: RunCli, tmp_path: Path) -> None:
    # `--fix --unsafe-fixes` applies them, so the summary, --statistics and SARIF say so (as ruff); the
    # cache (left on here) must not serve the plain run's answer to the unsafe one.
    (tmp_path / "attend.py").write_text(ESP009_SOURCE, encoding="utf-8")
    plain = run_cli("attend.py")
    assert "(0 fixable with --fix)" in plain.stdout
    unsafe = run_cli("--unsafe-fixes", "attend.py")
    n = len([line for line in unsafe.stdout.splitlines() if ": ESP009 " in line])
    assert n and f"({n} fixable with --fix)" in unsafe.stdout
    assert "[*] unused-batch-head-dims" in run_cli("--unsafe-fixes", "--statistics", "attend.py").stdout
    sarif = run_cli("--unsafe-fixes", "--output-format", "sarif", "attend.py").stdout
    assert '"fixes"' in sarif and '"fixes"' not in run_cli("--output-format", "sarif", "attend.py").stdout
    assert "(what `esper-lint --fix --unsafe-fixes` does for it)" in sarif  # the unsafe fix says so


def test_bytes_outside_the_edits_are_kept() -> None:
    source = (
        "# -*- coding: latin-1 -*-\r\n"
        "import torch\r\n"
        "from torch.nn.attention.flex_attention import create_block_mask\r\n"
        "# caf\xe9\r\n"
        "m = create_block_mask(f, None, None, 8, 8, _compile=True)  # d\xe9j\xe0\r\n"
    )
    result = _fix(source, encoding="latin-1")
    assert result.new_source == source.replace(
        "create_block_mask(f, None, None, 8, 8, _compile=True)", "torch.compile(create_block_mask)(f, None, None, 8, 8)"
    ).encode("latin-1")


def test_edits_apply_at_character_columns_back_to_front() -> None:
    text = "x = 'é'; f(a, b)\r\ny = 2\n"
    edits = [Edit(Span(1, 10, 1, 10), "g("), Edit(Span(1, 16, 1, 16), ")"), Edit(Span(2, 5, 2, 6), "3")]
    assert apply_to_text(text, edits) == "x = 'é'; g(f(a, b))\r\ny = 3\n"


@pytest.mark.torch
def test_fixed_programs_do_what_the_originals_did(tmp_path: Path) -> None:
    """Run the program before and after --fix: ESP010's fix builds the same BlockMask (without the warning);
    ESP013's turns a call that fails into the intended one."""
    pytest.importorskip("torch", reason="needs the `harness` extra (torch)")
    program = HEADER + textwrap.dedent("""\
        import warnings
        warnings.simplefilter("ignore")
        mask = create_block_mask(causal, None, None, 128, 128, device="cpu", _compile=True)
        q = k = v = torch.ones(1, 1, 128, 8)
        try:
            out = flex_attention(q, k, v, mask)
        except Exception as exc:
            out = type(exc).__name__
        print(mask.to_dense().sum().item(), mask.kv_num_blocks.tolist(), out if isinstance(out, str) else "ok")
        """)
    fixed = _fixed(program)
    assert "torch.compile(create_block_mask)(" in fixed and "flex_attention(q, k, v, block_mask=mask)" in fixed

    def run(source: str) -> list[str]:
        path = tmp_path / "program.py"
        path.write_text(source, encoding="utf-8")
        proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=600, check=True)
        return proc.stdout.split()

    before, after = run(program), run(fixed)
    assert before[:-1] == after[:-1]  # the same BlockMask
    assert before[-1] == "Unsupported" and after[-1] == "ok"


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (lambda text, edits: text + "\ndef (\n", "does not compile"),
        (lambda text, edits: text.replace("_compile=True", "_compile=True, _compile=True"), "does not compile"),
        (lambda text, edits: 1 / 0, "ZeroDivisionError"),
    ],
    ids=["syntax-error", "duplicate-keyword", "bug"],
)
def test_a_failing_edit_leaves_the_file_unchanged_and_says_why(
    monkeypatch: pytest.MonkeyPatch, broken: object, reason: str
) -> None:
    import esper_lint.fix.edits as edits

    monkeypatch.setattr(edits, "apply_to_text", broken)
    result = _fix(HEADER + "mask = create_block_mask(causal, None, None, 256, 256, _compile=True)\n")
    assert result.new_source is None
    [error] = result.errors
    assert error.kind == "internal-error" and reason in error.message and "left unchanged" in error.message
    assert [f.code for f in result.findings] == ["ESP010"]  # the findings are still reported


def test_diff_reports_what_remains_where_it_is_on_disk(run_cli: RunCli, tmp_path: Path) -> None:
    # The ESP010 fix removes a line, then the hoist fixes ESP001 below it: --diff must not list the hoisted
    # ESP001 as remaining (it did: its span, taken after the edit, no longer matched the file's).
    source = HEADER + textwrap.dedent("""\

        m = create_block_mask(
            causal,
            None,
            None,
            128,
            128,
            _compile=True,
        )


        def build(n):
            def inner(b, h, q_idx, kv_idx):
                return q_idx >= kv_idx

            return create_block_mask(inner, None, None, n, n)


        def swapped(b, h, kv_idx, q_idx):
            return kv_idx <= q_idx


        ms = create_block_mask(swapped, None, None, 128, 128)
        """)
    (tmp_path / "mix.py").write_text(source, encoding="utf-8")
    checked = run_cli("--no-cache", "--output-format", "json", "mix.py")
    on_disk = {f["code"]: (f["line"], f["column"]) for f in json.loads(checked.stdout)}
    assert set(on_disk) == {"ESP001", "ESP010", "ESP014"}
    diff = run_cli("--no-cache", "--diff", "--output-format", "json", "mix.py")
    assert diff.exit_code == 1 and "+def inner(" in diff.stdout
    remaining = json.loads(diff.stdout[diff.stdout.index("\n[") + 1 :])
    assert [(f["code"], (f["line"], f["column"])) for f in remaining] == [("ESP014", on_disk["ESP014"])]
