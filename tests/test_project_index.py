"""Masks across the modules of the checked project (issue 21, item 3; esper_lint/project.py).

Every test builds a small package where the mask (or factory, alias, helper) lives in one module and the
call in another, and checks what is reported at the call, for each way Python resolves the import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from esper_lint import runner
from esper_lint.config import Config, load_config
from esper_lint.core.findings import Finding
from esper_lint.runner import Mode, run

CREATE = "from torch.nn.attention.flex_attention import create_block_mask, flex_attention\n"

MASKS = """\
import torch
from torch.nn.attention.flex_attention import create_block_mask

LENGTHS = torch.tensor([3, 5])


def causal(b, h, q_idx, kv_idx):
    return q_idx >= kv_idx


def padding(b, h, q_idx, kv_idx):
    return kv_idx < LENGTHS[b]


def per_document(document_ids, unused_a, unused_b, unused_c):  # four parameters, as a mask_mod
    def document(b, h, q_idx, kv_idx):
        return document_ids[b, q_idx] == document_ids[b, kv_idx]

    return document


compiled_create_block_mask = torch.compile(create_block_mask, dynamic=False)


def make_block_mask(mask_mod, n):
    return create_block_mask(mask_mod, None, None, n, n)
"""


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        header = CREATE if text.startswith(CREATE) else ""  # `CREATE + """indented code"""`
        path.write_text(header + textwrap.dedent(text[len(header) :]))
    return root


def package(root: Path, model: str, masks: str = MASKS, layout: str = "mypkg") -> Path:
    """`pyproject.toml`, `<layout>/__init__.py`, `<layout>/masks.py` and `<layout>/model.py`."""
    return write(
        root,
        {
            "pyproject.toml": "[project]\nname = 'mypkg'\n",
            f"{layout}/__init__.py": "",
            f"{layout}/masks.py": masks,
            f"{layout}/model.py": model,
        },
    )


def check(root: Path, *paths: str, config: Config | None = None, jobs: int | None = None) -> list[Finding]:
    config = config or load_config(None, root)
    if jobs is not None:
        config = config.replace(jobs=jobs)
    result = run([str(root / p) for p in paths] or [str(root)], config, use_cache=False)
    assert not result.all_errors, result.all_errors
    return result.findings


def codes(findings: list[Finding]) -> list[tuple[str, int, str]]:
    return [(Path(f.path).name, f.span.line, f.code) for f in findings]


# ---------------------------------------------------------------------------------------- resolution
def test_relative_import_the_mask_reads_b_where_it_is_defined(tmp_path: Path) -> None:
    package(
        tmp_path,
        CREATE
        + """
        from .masks import padding

        def build(n):
            return create_block_mask(padding, None, None, n, n)
        """,
    )
    [finding] = check(tmp_path)
    assert (finding.code, Path(finding.path).name, finding.span.line) == ("ESP007", "model.py", 6)
    assert "`padding` (defined in mypkg/masks.py:11) reads `b`" in finding.message


def test_absolute_import_of_a_mask_that_never_reads_b(tmp_path: Path) -> None:
    package(
        tmp_path,
        CREATE
        + """
        from mypkg.masks import causal

        def attend(q, k, v):
            block_mask = create_block_mask(causal, q.shape[0], None, 128, 128)
            return flex_attention(q, k, v, block_mask=block_mask)
        """,
    )
    assert codes(check(tmp_path)) == [("model.py", 6, "ESP009")]


def test_src_layout_a_script_outside_the_package(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": "[project]\nname = 'mypkg'\n",
            "src/mypkg/__init__.py": "",
            "src/mypkg/masks.py": MASKS,
            "scripts/train.py": CREATE
            + "from mypkg.masks import padding\n\nblock_mask = create_block_mask(padding, None, None, 64, 64)\n",
        },
    )
    findings = check(tmp_path, "scripts/train.py")
    assert codes(findings) == [("train.py", 4, "ESP007")]
    assert "defined in src/mypkg/masks.py:11" in findings[0].message


def test_aliased_imports_and_module_attributes(tmp_path: Path) -> None:
    package(
        tmp_path,
        CREATE
        + """
        import mypkg.masks as m
        from . import masks
        from .masks import padding as pad

        def build(n):
            one = create_block_mask(m.padding, None, None, n, n)
            two = create_block_mask(masks.padding, None, None, n, n)
            three = create_block_mask(pad, None, None, n, n)
            return one, two, three
        """,
    )
    assert codes(check(tmp_path)) == [("model.py", 8, "ESP007"), ("model.py", 9, "ESP007"), ("model.py", 10, "ESP007")]


def test_factory_in_another_module_its_closure_captures(tmp_path: Path) -> None:
    package(
        tmp_path,
        CREATE
        + """
        from .masks import per_document

        class Model:
            def forward(self, q, k, v, ids):
                block_mask = create_block_mask(per_document(ids, 1, 2, 3), None, None, 128, 128)
                return flex_attention(q, k, v, block_mask=block_mask)
        """,
    )
    findings = check(tmp_path)
    # The closure reads `b` (ESP007) and captures `document_ids`: not capture-free, so no ESP005.
    assert codes(findings) == [("model.py", 7, "ESP007")]
    assert "`document` (defined in mypkg/masks.py:16 in `per_document`)" in findings[0].message


def test_compiled_alias_and_pass_through_helper_from_another_module(tmp_path: Path) -> None:
    package(
        tmp_path,
        """
        from torch.nn.attention.flex_attention import flex_attention

        from .masks import causal, compiled_create_block_mask, make_block_mask, padding

        class Model:
            def attend(self, q, k, v):
                return flex_attention(q, k, v, block_mask=compiled_create_block_mask(causal, 4, None, 8, 8))

            def padded(self, n):
                return make_block_mask(padding, n)

            def forward(self, q, k, v):
                def inner(b, h, q_idx, kv_idx):
                    return q_idx >= kv_idx

                return flex_attention(q, k, v, block_mask=make_block_mask(inner, 16))
        """,
    )
    findings = check(tmp_path, "mypkg/model.py")
    assert codes(findings) == [
        ("model.py", 8, "ESP009"),  # the alias is create_block_mask: B=4 for a mask that never reads b
        ("model.py", 11, "ESP007"),  # the helper passes B=None; padding reads b
        ("model.py", 17, "ESP001"),  # a nested capture-free mask handed to the helper
        ("model.py", 17, "ESP005"),
    ]
    helper = findings[1].message
    assert "`B=None` (passed by `make_block_mask`, defined in mypkg/masks.py:25)" in helper
    assert findings[2].fixable


def test_the_other_module_need_not_be_among_the_checked_files(tmp_path: Path) -> None:
    package(tmp_path, CREATE + "from .masks import padding\n\nmask = create_block_mask(padding, None, None, 8, 8)\n")
    assert codes(check(tmp_path, "mypkg/model.py")) == [("model.py", 4, "ESP007")]


def test_without_the_index_nothing_is_known_of_other_modules(tmp_path: Path) -> None:
    """What esper-lint did before: an imported mask is unknown. (The index is on for every run.)"""
    package(tmp_path, CREATE + "from .masks import padding\n\nmask = create_block_mask(padding, None, None, 8, 8)\n")
    from esper_lint.engine import lint_source

    path = tmp_path / "mypkg/model.py"
    assert lint_source(path.read_bytes(), str(path), load_config(None, tmp_path)).findings == []


def test_a_name_rebound_after_import_is_every_value_it_may_have(tmp_path: Path) -> None:
    package(
        tmp_path,
        CREATE
        + """
        from .masks import causal
        from elsewhere import choose

        if choose():
            causal = choose()

        def attend(q, k, v):
            block_mask = create_block_mask(causal, q.shape[0], None, 128, 128)
            return flex_attention(q, k, v, block_mask=block_mask)
        """,
    )
    assert check(tmp_path) == []  # `causal` may be something unknown: nothing says it ignores `b`


def test_a_name_the_other_module_binds_twice_is_not_described(tmp_path: Path) -> None:
    masks = (
        MASKS
        + "\n\nif LENGTHS.numel() > 1:\n    def causal(b, h, q_idx, kv_idx):\n        return kv_idx < LENGTHS[b]\n"
    )
    package(
        tmp_path,
        CREATE + "from .masks import causal\n\nmask = create_block_mask(causal, 8, None, 8, 8)\n",
        masks=masks,
    )
    assert check(tmp_path, "mypkg/model.py") == []


def test_circular_imports_between_two_project_modules(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": "",
            "pkg/__init__.py": "from .a import window\nfrom .b import causal\n",
            "pkg/a.py": CREATE
            + "from .b import causal\n\n\ndef window(b, h, q_idx, kv_idx):\n    return q_idx - kv_idx < 8\n\n\n"
            "mask = create_block_mask(causal, 2, None, 8, 8)\n",
            "pkg/b.py": CREATE
            + "from .a import window\n\n\ndef causal(b, h, q_idx, kv_idx):\n    return q_idx >= kv_idx\n\n\n"
            "mask = create_block_mask(window, 2, None, 8, 8)\n",
            # A re-export cycle: `pkg.loop` names itself through `pkg.c`.
            "pkg/c.py": "from pkg import loop\n",
            "pkg/d.py": CREATE + "from pkg.c import loop\n\nmask = create_block_mask(loop, 2, None, 8, 8)\n",
        },
    )
    (tmp_path / "pkg/__init__.py").write_text("from .a import window\nfrom .b import causal\nfrom .c import loop\n")
    findings = check(tmp_path)
    # a's and b's masks never read b; the two module-level BlockMasks are read nowhere in their modules (others
    # may import them), so ESP009 stays silent; the cycles end, and `loop` stays unknown.
    assert codes(findings) == []
    uses = _uses_of(tmp_path / "pkg/a.py", load_config(None, tmp_path))
    assert [(f.name, f.defined_in) for u in uses for f in u.functions] == [("causal", "pkg/b.py:5")]
    assert _uses_of(tmp_path / "pkg/d.py", load_config(None, tmp_path))[0].functions == []


def _uses_of(path: Path, config: Config) -> list:  # type: ignore[type-arg]
    import ast

    from esper_lint.analysis.module_facts import analyze_source
    from esper_lint.project import ProjectIndex

    text = path.read_text()
    names = ProjectIndex(config, [str(path)]).names_for(str(path))
    return analyze_source(ast.parse(text), text, config.apis, names).uses


def test_a_module_that_fails_to_parse_tells_nothing(tmp_path: Path) -> None:
    package(
        tmp_path,
        CREATE + "from .masks import causal\n\nmask = create_block_mask(causal, None, None, 8, 8)\n",
        masks=CREATE + "def causal(b, h, q_idx, kv_idx)\n    return q_idx >= kv_idx\n",
    )
    assert check(tmp_path, "mypkg/model.py") == []
    result = run([str(tmp_path)], load_config(None, tmp_path), use_cache=False)
    assert [e.kind for e in result.all_errors] == ["syntax-error"]  # masks.py itself, as before


def test_only_mask_shaped_functions_are_described(tmp_path: Path) -> None:
    masks = "def scaled(b, h, q_idx):\n    return q_idx > b\n"  # three parameters: not a mask_mod
    package(tmp_path, CREATE + "from .masks import scaled\n\nm = create_block_mask(scaled, None, None, 8, 8)\n", masks)
    assert check(tmp_path) == []


# ---------------------------------------------------------------------------------------- the cache
def _cached_run(root: Path, counter: list[str]) -> list[Finding]:
    config = load_config(None, root).replace(cache_dir=root / ".cache", jobs=1)
    result = run([str(root / "mypkg")], config, use_cache=True)
    assert not result.all_errors
    return result.findings


@pytest.fixture
def analysed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files analysed (not served from the cache), in order."""
    seen: list[str] = []
    original = runner.lint_any

    def counting(source: bytes, path: str, config: Config) -> object:
        seen.append(Path(path).name)
        return original(source, path, config)

    monkeypatch.setattr(runner, "lint_any", counting)
    return seen


def test_cache_is_invalidated_when_an_imported_mask_changes(tmp_path: Path, analysed: list[str]) -> None:
    model = (
        CREATE
        + """
        from .masks import causal

        def attend(q, k, v):
            block_mask = create_block_mask(causal, q.shape[0], None, 128, 128)
            return flex_attention(q, k, v, block_mask=block_mask)
        """
    )
    package(tmp_path, model)
    assert codes(_cached_run(tmp_path, analysed)) == [("model.py", 6, "ESP009")]
    assert "model.py" in analysed
    analysed.clear()
    assert codes(_cached_run(tmp_path, analysed)) == [("model.py", 6, "ESP009")]
    assert "model.py" not in analysed  # served from the cache

    # A comment (or any change that leaves what masks.py offers as it was) keeps model.py's result; one
    # that moves `causal` to another line does not (the message says where it is defined).
    masks = tmp_path / "mypkg/masks.py"
    masks.write_text(MASKS + "# a comment\n")
    assert codes(_cached_run(tmp_path, analysed)) == [("model.py", 6, "ESP009")]
    assert "model.py" not in analysed

    # causal now reads `b`: model.py's cached result rested on "never reads b": analysed again.
    masks.write_text(MASKS.replace("return q_idx >= kv_idx", "return (q_idx >= kv_idx) & (kv_idx < LENGTHS[b])"))
    assert _cached_run(tmp_path, analysed) == []
    assert "model.py" in analysed


def test_cache_is_invalidated_when_a_module_appears_that_shadows(tmp_path: Path, analysed: list[str]) -> None:
    write(
        tmp_path,
        {
            "pyproject.toml": "",
            "mypkg/__init__.py": "",
            "mypkg/model.py": CREATE
            + "from shapes import causal\n\nmask = create_block_mask(causal, None, None, 8, 8)\n"
            + "out = flex_attention(1, 2, 3, block_mask=mask)\n",
        },
    )
    assert _cached_run(tmp_path, analysed) == []
    write(tmp_path, {"shapes.py": "def causal(b, h, q, kv):\n    return kv < b\n"})  # now it resolves
    analysed.clear()
    assert codes(_cached_run(tmp_path, analysed)) == [("model.py", 4, "ESP007")]
    assert "model.py" in analysed


def test_one_file_run_reads_the_imported_module_s_exports_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package(tmp_path, CREATE + "from .masks import padding\n\nmask = create_block_mask(padding, None, None, 8, 8)\n")
    from esper_lint import engine

    parsed: list[str] = []
    original = engine.module_exports

    def counting(source: bytes, path: str, config: Config) -> object:
        parsed.append(Path(path).name)
        return original(source, path, config)

    monkeypatch.setattr(engine, "module_exports", counting)
    config = load_config(None, tmp_path).replace(cache_dir=tmp_path / ".cache")
    model = tmp_path / "mypkg/model.py"
    assert [f.code for f in run([str(model)], config).findings] == ["ESP007"]
    assert parsed == ["masks.py"]
    model.write_text(model.read_text() + "\n# edited\n")  # model.py is analysed again, masks.py is not parsed
    assert [f.code for f in run([str(model)], config).findings] == ["ESP007"]
    assert parsed == ["masks.py"]


# ---------------------------------------------------------------------------------------- same answers
def test_serial_and_parallel_runs_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = (
        CREATE
        + """
        from .masks import causal, padding, per_document, make_block_mask

        def one(n):
            return create_block_mask(padding, None, None, n, n)

        def two(q, k, v, ids):
            out = flex_attention(q, k, v, block_mask=create_block_mask(causal, 4, None, 8, 8))
            return out, create_block_mask(per_document(ids, 1, 2, 3), None, None, 8, 8), make_block_mask(padding, 8)
        """
    )
    package(tmp_path, model)
    for index in range(4):  # several importers, so that workers answer on their own
        (tmp_path / f"mypkg/model_{index}.py").write_text((tmp_path / "mypkg/model.py").read_text())
    monkeypatch.setattr(runner, "PARALLEL_MIN_BYTES", 0)
    serial = check(tmp_path, jobs=1)
    parallel = check(tmp_path, jobs=2)
    assert len(serial) == 20
    assert [f.to_dict() for f in serial] == [f.to_dict() for f in parallel]


def _cli(*args: str, cwd: Path, stdin: str | None = None) -> str:
    command = [sys.executable, "-m", "esper_lint", "--no-cache", *args]
    done = subprocess.run(command, cwd=cwd, input=stdin, capture_output=True, text=True, check=False)
    return done.stdout


def test_stdin_flake8_and_server_see_the_project_as_the_cli_does(tmp_path: Path) -> None:
    package(tmp_path, CREATE + "from .masks import padding\n\nmask = create_block_mask(padding, None, None, 8, 8)\n")
    model = tmp_path / "mypkg/model.py"
    cli = _cli("mypkg/model.py", cwd=tmp_path)
    assert "mypkg/model.py:4:35: ESP007" in cli
    # stdin with the file's name: resolved from its folder; without it, no package to be relative to.
    named = _cli("--stdin-filename", "mypkg/model.py", "-", cwd=tmp_path, stdin=model.read_text())
    assert "ESP007" in named
    assert "ESP007" not in _cli("-", cwd=tmp_path, stdin=model.read_text())
    # flake8's plugin and the language server check the file against the modules on disk.
    from esper_lint.flake8_plugin import EsperLintChecker
    from esper_lint.server.linting import ConfigCache, lint_buffer
    from esper_lint.server.text import Buffer

    lines = model.read_text().splitlines(keepends=True)
    reported = [message.split()[0] for _, _, message, _ in EsperLintChecker(None, str(model), lines).run()]  # type: ignore[arg-type]
    assert reported == ["ESP007"]
    config = ConfigCache().for_file(model)
    result = lint_buffer(Buffer.from_text(model.read_text()), str(model), config)
    assert [f.code for f in result.findings] == ["ESP007"]


def test_fix_and_check_agree_on_a_mask_handed_to_another_module_s_helper(tmp_path: Path) -> None:
    package(
        tmp_path,
        """
        from torch.nn.attention.flex_attention import flex_attention

        from .masks import make_block_mask

        def attend(q, k, v):
            def inner(b, h, q_idx, kv_idx):
                return q_idx >= kv_idx

            return flex_attention(q, k, v, block_mask=make_block_mask(inner, q.shape[-2]))
        """,
    )
    config = load_config(None, tmp_path)
    [finding] = run([str(tmp_path / "mypkg/model.py")], config, use_cache=False).findings
    assert (finding.code, finding.fixable) == ("ESP001", True)
    fixed = run([str(tmp_path / "mypkg/model.py")], config, Mode.FIX, use_cache=False)
    assert fixed.fixed == 1
    assert (
        "\n\n\ndef inner(b, h, q_idx, kv_idx):\n    return q_idx >= kv_idx\n\n\ndef attend("
        in (tmp_path / "mypkg/model.py").read_text()
    )


# ---------------------------------------------------------------------------------------- the text check
def test_the_text_check_never_rules_out_what_the_exports_describe(tmp_path: Path) -> None:
    """`_may_bind` spares most modules a parse; it may say yes wrongly, never no where the module's
    exports (the parse) describe the name. Checked on every module of our fixtures and behaviour programs
    and on layouts written to be awkward for a text search."""
    from esper_lint.analysis.module_exports import module_exports as exports
    from esper_lint.core.apis import ApiTable
    from esper_lint.project import _may_bind

    awkward = {
        "multiline.py": CREATE
        + "def make(\n    n,\n    mask_mod,\n):\n    return create_block_mask(\n"
        + "        mask_mod, None, None, n, n\n    )\n",
        "aliased.py": "import torch\nfrom torch.nn.attention.flex_attention import create_block_mask as cbm\n\n"
        "if torch.cuda.is_available():\n    compiled = torch.compile(cbm)\n",
        "keyword.py": CREATE
        + "async def build(n, fn):\n    return create_block_mask(mask_mod=fn, B=None, H=None, Q_LEN=n, KV_LEN=n)\n",
        "reexport.py": "from .masks import (\n    causal,  # the causal one\n    padding as pad,\n)\n",
        "lambda.py": "causal = (\n    lambda b, h, q_idx, kv_idx: q_idx >= kv_idx\n)\n",
    }
    write(tmp_path, {**awkward, "masks.py": MASKS})
    root = Path(__file__).resolve().parent.parent
    files = [*sorted((root / "fixtures").rglob("*.py")), *sorted((root / "tests/behaviour").rglob("*.py"))]
    files += sorted(tmp_path.glob("*.py"))
    apis = ApiTable()
    described = 0
    for path in files:
        source = path.read_bytes()
        try:
            text = source.decode("utf-8")
            tree = ast.parse(text)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue  # not analysed at all
        for name, entry in exports(tree, text, apis).items():
            callable_entry = entry["kind"] in ("alias", "helper", "reexport")
            if entry["kind"] != "reexport":
                assert _may_bind(source, name, None), (path, name)
            if callable_entry:
                assert _may_bind(source, name, apis.spelling_bytes), (path, name, entry["kind"])
            described += 1
    assert described > 50
    kinds = {
        e["kind"]
        for p in sorted(tmp_path.glob("*.py"))
        for e in exports(ast.parse(p.read_text()), p.read_text(), apis).values()
    }
    assert kinds >= {"helper", "alias", "reexport", "mask", "factory"}
