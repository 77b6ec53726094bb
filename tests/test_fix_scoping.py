"""The fix follows Python's own scoping, and keeps every comment: each program prints the same before and after.

Each case is a small program run in a subprocess before and after `fix_source`, with a stand-in
`torch.nn.attention.flex_attention` (create_block_mask returns the mask function) so no torch is needed.
Covered (issue 11): private-name mangling inside classes, class bodies that resolve names their own way,
NFKC-equal identifiers, comments inside a multi-line lambda, re-indenting a moved lambda, and code nested
hundreds of levels deep, where check and fix must agree.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from esper_lint.config import Config
from esper_lint.core.findings import FileResult
from esper_lint.engine import lint_source
from esper_lint.fix.file_fixer import fix_source

CONFIG = Config(root=Path(__file__).resolve().parent.parent)
IMPORT = "from torch.nn.attention.flex_attention import create_block_mask\n"


@pytest.fixture
def run_program(tmp_path: Path) -> object:
    package = tmp_path / "torch" / "nn" / "attention"
    package.mkdir(parents=True)
    for folder in (tmp_path / "torch", tmp_path / "torch" / "nn", package):
        (folder / "__init__.py").write_text("")
    stand_in = "def create_block_mask(mask_mod, B, H, Q, KV, **kw):\n    return mask_mod\n"
    (package / "flex_attention.py").write_text(stand_in)

    def run(source: bytes) -> str:
        (tmp_path / "program.py").write_bytes(source)
        proc = subprocess.run([sys.executable, "program.py"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    return run


def fixed_and_compared(run_program: object, source: str) -> tuple[FileResult, str]:
    """Fix `source`; the fixed program prints exactly what the original printed. Returns the fix and its text."""
    assert callable(run_program)
    data = source.encode("utf-8")
    result = fix_source(data, "program.py", CONFIG)
    assert not result.errors, result.errors
    after = result.new_source if result.new_source is not None else data
    before_output = run_program(data)
    assert before_output.strip(), "the program must print something to compare"
    assert run_program(after) == before_output
    return result, after.decode("utf-8")


def comments(text: str) -> list[str]:
    tokens = tokenize.generate_tokens(io.StringIO(text).readline)
    return sorted(t.string for t in tokens if t.type == tokenize.COMMENT)


# ---------------------------------------------------------------------- (a) private-name mangling
MANGLED_BODY = (
    IMPORT
    + """
class Model:
    __window = 2

    def mask(self, n):
        def causal(b, h, q, kv):
            return q - kv < Model.__window
        return create_block_mask(causal, None, None, n, n)


print(Model().mask(4)(0, 0, 3, 1), Model().mask(4)(0, 0, 3, 0))
"""
)
MANGLED_NAME = (
    IMPORT
    + """
class Model:
    def mask(self, n):
        def __causal(b, h, q, kv):
            return q >= kv
        return create_block_mask(__causal, None, None, n, n)


print(Model().mask(4)(0, 0, 2, 1))
"""
)


@pytest.mark.parametrize("source", [MANGLED_BODY, MANGLED_NAME], ids=["body", "name"])
def test_mangled_names_are_declined_with_a_reason(run_program: object, source: str) -> None:
    result, _ = fixed_and_compared(run_program, source)
    assert result.new_source is None and result.fixed == 0
    [finding] = result.findings
    assert not finding.fixable and "mangles" in finding.message
    checked = lint_source(source.encode(), "program.py", CONFIG).findings
    assert [(f.fixable, f.message) for f in checked] == [(finding.fixable, finding.message)]


def test_private_names_outside_classes_are_not_mangled(run_program: object) -> None:
    source = (
        IMPORT
        + """
def build(n):
    def __causal(b, h, q, kv):
        return q >= kv
    return create_block_mask(__causal, None, None, n, n)


print(build(4)(0, 0, 2, 1))
"""
    )
    result, text = fixed_and_compared(run_program, source)
    assert result.fixed == 1 and "\ndef __causal(" in text


# ---------------------------------------------------------------------- (b) class bodies
def test_a_class_body_that_binds_the_name_reads_module_level(run_program: object) -> None:
    # `seen = causal` in a class body that also binds `causal` reads the module's `causal`, not the
    # enclosing function's: it must not be renamed with the function.
    source = (
        IMPORT
        + """
causal = "module"


def build(n):
    def causal(b, h, q, kv):
        return q >= kv

    class Holder:
        seen = causal
        causal = 1

    class Reader:
        mask = create_block_mask(causal, None, None, n, n)

    return create_block_mask(causal, None, None, n, n), Holder.seen, Reader.mask(0, 0, 1, 2)


mask, seen, other = build(4)
print(mask(0, 0, 2, 1), seen, other)
"""
    )
    result, text = fixed_and_compared(run_program, source)
    assert result.fixed == 2  # one finding per call
    assert "def causal_2(b, h, q, kv):" in text
    assert "        seen = causal\n        causal = 1" in text  # the class body is untouched
    assert "    class Reader:\n        mask = create_block_mask(causal_2," in text  # this one read the function


def test_an_attribute_of_the_enclosing_class_does_not_force_a_rename(run_program: object) -> None:
    source = (
        IMPORT
        + """
class Attention:
    causal = "attribute"

    def mask(self, n):
        def causal(b, h, q, kv):
            return q >= kv
        return create_block_mask(causal, None, None, n, n)


print(Attention().mask(4)(0, 0, 2, 1), Attention.causal)
"""
    )
    result, text = fixed_and_compared(run_program, source)
    assert result.fixed == 1 and "\ndef causal(b, h, q, kv):" in text and "causal_2" not in text


def test_a_local_of_an_enclosing_function_forces_a_rename(run_program: object) -> None:
    source = (
        IMPORT
        + """
def outer(n):
    build_mask_mod = "outer local"

    def build():
        return create_block_mask(lambda b, h, q, kv: q - kv < 2, None, None, n, n), build_mask_mod

    return build()


mask, local = outer(4)
print(mask(0, 0, 2, 1), local)
"""
    )
    result, text = fixed_and_compared(run_program, source)
    assert result.fixed == 1 and "def build_mask_mod_2(b, h, q, kv):" in text


# ---------------------------------------------------------------------- (c) NFKC
def test_identifiers_are_compared_as_python_normalises_them(run_program: object) -> None:
    # `\uff43ausal` (a fullwidth c) is the same name as `causal` to Python.
    wide = "\uff43ausal"
    source = (
        IMPORT
        + f"""
{wide} = "module"


def build(n):
    def causal(b, h, q, kv):
        return q >= kv
    return create_block_mask({wide} if False else causal, None, None, n, n)


print(build(4)(0, 0, 2, 1), causal)
"""
    )
    result, text = fixed_and_compared(run_program, source)
    assert result.fixed == 1 and "def causal_2(b, h, q, kv):" in text
    assert "create_block_mask(causal_2 if False else causal_2," in text


# ---------------------------------------------------------------------- (d) comments, (e) layout
MULTILINE_LAMBDA = (
    IMPORT
    + """
class Model:
    def build(self, n):
        return create_block_mask(
            lambda b, h, q, kv:  # causal: a query sees itself and the past
                                (q >= kv)
                                # and only a short window back
                                & (q - kv < 3),  # the window
            None, None, n, n)


print(Model().build(4)(0, 0, 2, 1), Model().build(4)(0, 0, 3, 0))
"""
)


def test_every_comment_survives_and_the_lambda_is_reindented(run_program: object) -> None:
    result, text = fixed_and_compared(run_program, MULTILINE_LAMBDA)
    assert result.fixed == 1
    assert comments(text) == comments(MULTILINE_LAMBDA)
    hoisted = text[text.index("def build_mask_mod") : text.index("class Model")]
    body = hoisted.splitlines()[1:]
    assert body[0] == "    # causal: a query sees itself and the past"
    # Continuation lines sit one indent in from `return`, keeping their shape, not at column 32.
    assert all(len(line) - len(line.lstrip()) <= 8 for line in body if line.strip())
    assert any(line.startswith("        & (q - kv < 3)") for line in body)


# ---------------------------------------------------------------------- deep nesting
@pytest.mark.parametrize("depth", [400, 800])
def test_check_and_fix_agree_on_deeply_nested_code(run_program: object, depth: int) -> None:
    chain = " + ".join(["1"] * depth)
    source = (
        IMPORT
        + f"""
def build(n):
    def causal(b, h, q, kv):
        return q >= kv
    y = {chain}
    return create_block_mask(causal, None, None, n, n), y


print(build(4)[0](0, 0, 2, 1), build(4)[1])
"""
    )
    checked = lint_source(source.encode(), "program.py", CONFIG)
    assert not checked.errors and [f.fixable for f in checked.findings] == [True]
    result, text = fixed_and_compared(run_program, source)
    assert result.fixed == 1 and "\ndef causal(b, h, q, kv):" in text


def test_check_and_fix_agree_on_code_too_deep_to_analyse() -> None:
    source = IMPORT + "def build(n):\n    y = " + " + ".join(["1"] * 3000) + "\n    return y\n"
    checked = lint_source(source.encode(), "deep.py", CONFIG)
    fixed = fix_source(source.encode(), "deep.py", CONFIG)
    assert [e.kind for e in checked.errors] == [e.kind for e in fixed.errors] == ["too-complex"]
    assert fixed.new_source is None


def test_a_parenthesised_lambda_body_is_reindented_with_its_closing_bracket(run_program: object) -> None:
    """torchtitan's test_fused_mla_override: `lambda ...: (` / body / `)` in a method's call."""
    source = (
        IMPORT
        + """

class Check:
    def test_causal(self, n):
        mask = create_block_mask(
            lambda batch_idx, head_idx, query_idx, key_value_idx: (
                query_idx >= key_value_idx
            ),
            None,
            None,
            n,
            n,
        )
        return mask


print(Check().test_causal(4)(0, 0, 2, 1))
"""
    )
    result, text = fixed_and_compared(run_program, source)
    assert result.fixed == 1
    hoisted = text[text.index("def causal_mask") : text.index("class Check")].rstrip()
    assert hoisted.splitlines()[1:] == ["    return (", "        query_idx >= key_value_idx", "    )"]
