"""`esper-lint server` end to end: a real LSP client talks to the real server process over stdio."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NESTED, RunCli
from hypothesis import given, settings
from hypothesis import strategies as st
from test_server_support import (
    DEFAULT_CAPABILITIES,
    SERVER_COMMAND,
    LspClient,
    apply_text_edits,
    apply_workspace_edit,
    editor_bytes,
    editor_text,
)

from esper_lint.config import Config
from esper_lint.core.span import Span
from esper_lint.reporters.sarif import help_uri
from esper_lint.rules import RULES_BY_CODE
from esper_lint.server.linting import add_noqa, lint_buffer
from esper_lint.server.text import Buffer, Position, line_edits, span_to_range, split_lines, utf16_units

pytest.importorskip("pygls", reason="the language server needs the [server] extra: pip install 'esper-lint[server]'")

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "fix"
FIX_INPUTS = sorted(FIXTURES.glob("*.in.py"))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[LspClient]:
    lsp = LspClient(tmp_path)
    lsp.initialize()
    try:
        yield lsp
    finally:
        lsp.close()


def cli_json(run_cli: RunCli, path: Path, cwd: Path) -> list[dict[str, Any]]:
    """`esper-lint --output-format json FILE` (the real CLI, in-process)."""
    findings: list[dict[str, Any]] = json.loads(
        run_cli("--output-format", "json", "--no-cache", str(path), cwd=cwd).stdout
    )
    return findings


def cli_fix(run_cli: RunCli, source: bytes, cwd: Path, name: str = "cli_copy.py") -> bytes:
    """What `esper-lint --fix` writes for a file holding `source` (a copy, in `cwd`)."""
    path = cwd / name
    path.write_bytes(source)
    run_cli("--fix", "--no-cache", str(path), cwd=cwd)
    return path.read_bytes()


def fix_action(actions: list[dict[str, Any]]) -> dict[str, Any] | None:
    return next((a for a in actions if a["kind"] == "quickfix" and a["title"].startswith("esper-lint: fix")), None)


def resolved(client: LspClient, action: dict[str, Any]) -> dict[str, Any]:
    """The action with its edit, as a client gets it when the user chooses it."""
    if "edit" in action:
        return action
    assert "data" in action, "an action without an edit must say how to resolve it"
    answer: dict[str, Any] = client.request("codeAction/resolve", action)
    return answer


def test_session_open_code_action_apply_change_shutdown(run_cli: RunCli, client: LspClient, tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text(NESTED)
    diagnostics = client.open(path, NESTED)
    (cli_finding,) = cli_json(run_cli, path, tmp_path)
    (diagnostic,) = diagnostics
    assert diagnostic["code"] == cli_finding["code"] == "ESP001"
    assert diagnostic["message"] == cli_finding["message"]
    assert diagnostic["source"] == "esper-lint"
    assert diagnostic["severity"] == 2
    assert diagnostic["data"]["fixable"] is cli_finding["fixable"] is True
    # The rule's page, where the package declares where its docs are published (as SARIF's helpUri).
    page = help_uri(RULES_BY_CODE["ESP001"])
    assert diagnostic.get("codeDescription") == ({"href": page} if page else None)
    assert diagnostic["range"] == {
        "start": {"line": cli_finding["line"] - 1, "character": cli_finding["column"] - 1},
        "end": {"line": cli_finding["end_line"] - 1, "character": cli_finding["end_column"] - 1},
    }

    actions = client.code_actions(path, diagnostic)
    titles = [a["title"] for a in actions]
    assert titles == [
        "esper-lint: fix ESP001 (nested-mask-mod)",
        "esper-lint: add `# noqa: ESP001`",
        "esper-lint: apply all safe fixes",
    ]
    assert "edit" not in actions[0]  # the client resolves edits: the fix runs only when chosen
    fixed = apply_workspace_edit(NESTED, path.as_uri(), resolved(client, actions[0])["edit"])
    assert fixed.encode() == cli_fix(run_cli, NESTED.encode(), tmp_path)
    assert client.change(path, fixed, 2) == []  # the fixed buffer has nothing left

    with_noqa = apply_workspace_edit(NESTED, path.as_uri(), actions[1]["edit"])
    assert "create_block_mask(causal, None, None, n, n)  # noqa: ESP001\n" in with_noqa
    assert client.change(path, with_noqa, 3) == []
    assert client.shutdown() == 0


def test_fixes_are_resolved_on_demand_or_sent_whole(run_cli: RunCli, tmp_path: Path) -> None:
    """With `resolveSupport` a fix's edit is computed only when chosen; without it, it comes along."""
    path = tmp_path / "model.py"
    path.write_text(NESTED)
    expected = cli_fix(run_cli, NESTED.encode(), tmp_path)
    no_resolve = json.loads(json.dumps(DEFAULT_CAPABILITIES))
    del no_resolve["textDocument"]["codeAction"]["resolveSupport"]
    del no_resolve["workspace"]["workspaceEdit"]
    for capabilities in (DEFAULT_CAPABILITIES, no_resolve):
        lsp = LspClient(tmp_path)
        try:
            lsp.initialize(capabilities)
            (diagnostic,) = lsp.open(path, NESTED)
            (fix_all,) = lsp.code_actions(path, diagnostic, only=["source"])
            quick_fix = fix_action(lsp.code_actions(path, diagnostic, only=["quickfix"]))
            assert fix_all["kind"] == "source.fixAll.esper-lint" and quick_fix is not None
            for action in (fix_all, quick_fix):
                if "edit" not in action:
                    assert capabilities is DEFAULT_CAPABILITIES
                    action = resolved(lsp, action)
                else:
                    assert "changes" in action["edit"]  # the client did not announce documentChanges
                assert apply_workspace_edit(NESTED, path.as_uri(), action["edit"]).encode() == expected
            assert lsp.shutdown() == 0
        finally:
            lsp.close()


def test_quick_fix_equals_cli_fix_on_every_fixture(run_cli: RunCli, client: LspClient, tmp_path: Path) -> None:
    """Applying quick fixes until none is offered gives the bytes `esper-lint --fix` writes; so does fix-all."""
    checked = 0
    for version_base, fixture in enumerate(FIX_INPUTS):
        source = fixture.read_bytes()
        path = tmp_path / fixture.name.replace(".in.py", ".py")
        path.write_bytes(source)
        expected = cli_fix(run_cli, source, tmp_path, f"cli_{path.name}")
        text, encoding, bom = editor_text(source)
        version = version_base * 100
        diagnostics = client.open(path, text, version)
        for _ in range(10):  # each quick fix fixes its rule everywhere: a few rounds at most
            action = None
            for diagnostic in (d for d in diagnostics if d["data"]["fixable"]):
                offered = fix_action(client.code_actions(path, diagnostic))
                assert offered is not None, "a fixable finding is offered its fix"
                start = len(client.notifications)
                action = resolved(client, offered)
                if "edit" in action:
                    break
                # The fixer, which sees the whole module, ruled it out after all: the user is told why.
                shown = client.wait_for(lambda m: m["method"] == "window/showMessage", start=start)
                assert shown["params"]["message"].startswith("esper-lint: no fix applied: "), shown
                action = None
            if action is None:
                break
            text = apply_workspace_edit(text, path.as_uri(), action["edit"])
            version += 1
            diagnostics = client.change(path, text, version)
        assert editor_bytes(text, encoding, bom) == expected, fixture.name
        # The same file fixed in one go with `source.fixAll.esper-lint`.
        whole = tmp_path / f"all_{path.name}"
        diagnostics = client.open(whole, editor_text(source)[0], version_base * 100)
        fixable = [d for d in diagnostics if d["data"]["fixable"]]
        if fixable:
            (fix_all,) = client.code_actions(whole, fixable[0], only=["source.fixAll"])
            edit = resolved(client, fix_all).get("edit", {"changes": {whole.as_uri(): []}})
            all_at_once = apply_workspace_edit(editor_text(source)[0], whole.as_uri(), edit)
            assert editor_bytes(all_at_once, encoding, bom) == expected, fixture.name
        checked += expected != source
    assert checked >= 10  # the fixtures do exercise the fixer


def test_non_ascii_ranges_count_utf16_units(run_cli: RunCli, client: LspClient, tmp_path: Path) -> None:
    source = NESTED.replace("    return create_block_mask(", '    label = "é😀"; return create_block_mask(')
    assert source != NESTED
    path = tmp_path / "wide.py"
    path.write_text(source, encoding="utf-8")
    (finding,) = cli_json(run_cli, path, tmp_path)
    (diagnostic,) = client.open(path, source)
    line = split_lines(source)[finding["line"] - 1]
    assert "😀" in line[: finding["column"] - 1]
    prefix = line[: finding["column"] - 1]
    assert diagnostic["range"]["start"] == {"line": finding["line"] - 1, "character": len(prefix) + 1}  # 😀 is 2 units
    assert line[finding["column"] - 1 : finding["end_column"] - 1] == "causal"


def test_utf8_position_encoding_when_the_client_prefers_it(tmp_path: Path) -> None:
    source = NESTED.replace(
        "        return create_block_mask(causal,", '        x = "é"; y = create_block_mask(causal,'
    )
    path = tmp_path / "wide.py"
    path.write_text(source, encoding="utf-8")
    capabilities = json.loads(json.dumps(DEFAULT_CAPABILITIES))
    capabilities["general"]["positionEncodings"] = ["utf-8"]
    lsp = LspClient(tmp_path)
    try:
        assert lsp.initialize(capabilities)["capabilities"]["positionEncoding"] == "utf-8"
        (diagnostic,) = lsp.open(path, source)
        line = split_lines(source)[diagnostic["range"]["start"]["line"]]
        start = diagnostic["range"]["start"]["character"]
        assert line.encode()[start:].startswith(b"causal")
    finally:
        lsp.close()


def test_configuration_nearest_pyproject_and_reload(run_cli: RunCli, client: LspClient, tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nignore = ["ESP001"]\n')
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "pyproject.toml").write_text("[tool.esper-lint]\n")
    top, nested = tmp_path / "top.py", sub / "nested.py"
    assert client.open(top, NESTED) == []  # ignored by the workspace's pyproject.toml
    assert [d["code"] for d in client.open(nested, NESTED)] == ["ESP001"]  # its own, nearer config
    assert cli_json(run_cli, top, tmp_path) == []

    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nselect = ["ESP"]\n')
    start = len(client.notifications)
    assert any(r["method"] == "client/registerCapability" for r in client.server_requests)
    client.notify(
        "workspace/didChangeWatchedFiles", {"changes": [{"uri": (tmp_path / "pyproject.toml").as_uri(), "type": 2}]}
    )
    assert [d["code"] for d in client.diagnostics(top.as_uri(), start)] == ["ESP001"]


def test_config_change_is_seen_without_a_watcher(client: LspClient, tmp_path: Path) -> None:
    """Editors that cannot watch files still get the new configuration at the next lint (stat on each lint)."""
    path = tmp_path / "model.py"
    assert len(client.open(path, NESTED)) == 1
    (tmp_path / "pyproject.toml").write_text('[tool.esper-lint]\nignore = ["ESP001"]\n')
    assert client.change(path, NESTED + "\n", 2) == []
    (tmp_path / "pyproject.toml").write_text("[tool.esper-lint]\nunknown-key = 1\n")
    start = len(client.notifications)
    assert client.change(path, NESTED, 3) == []
    (log,) = client.logs(start)
    assert "unknown key(s) in [tool.esper-lint]: unknown-key" in log


def test_unsaved_buffer_is_linted_not_the_disk(client: LspClient, tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text("x = 1\n")
    assert len(client.open(path, NESTED)) == 1
    untitled = "untitled:Untitled-1"
    start = len(client.notifications)
    item = {"uri": untitled, "languageId": "python", "version": 1, "text": NESTED}
    client.notify("textDocument/didOpen", {"textDocument": item})
    assert [d["code"] for d in client.diagnostics(untitled, start, 1)] == ["ESP001"]


def test_syntax_error_clears_diagnostics_and_logs_one_line(client: LspClient, tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    assert len(client.open(path, NESTED)) == 1
    broken = NESTED.replace("return q_idx >= kv_idx", "return q_idx >=")
    start = len(client.notifications)
    assert client.change(path, broken, 2) == []
    assert client.change(path, broken + "\n", 3) == []  # the same problem again: not logged again
    (log,) = client.logs(start)
    assert "model.py:6" in log and "syntax error" in log
    assert len(client.change(path, NESTED, 4)) == 1  # and back once it parses


def test_file_that_cannot_be_checked_says_so(client: LspClient, tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    text = "# -*- coding: latin-1 -*-\n" + NESTED + "x = '\u20ac'\n"  # the euro sign is not in latin-1
    (diagnostic,) = client.open(path, text)
    assert diagnostic["severity"] == 1 and diagnostic["code"] == "decode-error"
    assert "cannot be stored in the declared encoding" in diagnostic["message"]


def test_exception_in_a_rule_is_logged_and_the_server_goes_on(tmp_path: Path) -> None:
    """The real server with one rule broken in its process (patched before it starts): it logs and serves on."""
    patch = (
        "import sys\n"
        "from esper_lint.rules.mask_functions import NestedMaskMod\n"
        "def broken(self, path, use):\n"
        "    raise ZeroDivisionError('rule bug')\n"
        "NestedMaskMod.check = broken\n"
        "sys.argv = ['esper-lint', 'server']\n"
        "from esper_lint.cli import entry_point\n"
        "entry_point()\n"
    )
    lsp = LspClient(tmp_path, command=(sys.executable, "-c", patch))
    try:
        lsp.initialize()
        path = tmp_path / "model.py"
        (diagnostic,) = lsp.open(path, NESTED)
        assert diagnostic["code"] == "internal-error"
        assert "ZeroDivisionError: rule bug" in diagnostic["message"]
        assert any("ZeroDivisionError: rule bug" in line for line in lsp.logs())
        other = tmp_path / "clean.py"
        assert lsp.open(other, "x = 1\n") == []  # still serving
        assert (
            lsp.request(
                "textDocument/codeAction",
                {
                    "textDocument": {"uri": path.as_uri()},
                    "range": diagnostic["range"],
                    "context": {"diagnostics": [diagnostic]},
                },
            )
            == []
        )
        assert lsp.shutdown() == 0
    finally:
        lsp.close()


def test_libcst_is_imported_only_when_a_fix_is_asked_for(tmp_path: Path) -> None:
    """`python -X importtime` makes the real server process list every module it imports on stderr."""
    log = tmp_path / "imports.txt"
    path = tmp_path / "model.py"
    with open(log, "wb") as stderr:
        lsp = LspClient(tmp_path, command=(sys.executable, "-X", "importtime", *SERVER_COMMAND[1:]), stderr=stderr)
        try:
            lsp.initialize()
            (diagnostic,) = lsp.open(path, NESTED)
            assert "| pygls" in log.read_text()  # the log is live
            assert "libcst" not in log.read_text()
            offered = fix_action(lsp.code_actions(path, diagnostic))
            assert offered is not None
            assert "libcst" not in log.read_text()  # offering a fix is not running it
            assert "edit" in resolved(lsp, offered)
            assert "| libcst" in log.read_text()
            assert lsp.shutdown() == 0
        finally:
            lsp.close()


def test_close_clears_diagnostics(client: LspClient, tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    assert len(client.open(path, NESTED)) == 1
    start = len(client.notifications)
    client.notify("textDocument/didClose", {"textDocument": {"uri": path.as_uri()}})
    assert client.diagnostics(path.as_uri(), start) == []


def test_missing_lsp_library_names_the_extra(tmp_path: Path) -> None:
    block = "import sys; sys.modules['pygls'] = None; sys.argv = ['esper-lint', 'server']; "
    completed = subprocess.run(
        [sys.executable, "-c", block + "from esper_lint.cli import entry_point; entry_point()"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
    )
    assert completed.returncode == 2
    assert "pip install 'esper-lint[server]'" in completed.stderr
    assert "Traceback" not in completed.stderr


# ---------------------------------------------------------------------- conversions, on their own
def test_span_to_range_counts_utf16_and_skips_a_bom_in_the_text() -> None:
    lines = split_lines('x = "😀"; f(mask)\n')
    start, end = span_to_range(Span(1, 12, 1, 16), lines)
    assert (start, end) == (Position(0, 12), Position(0, 16))
    start, _ = span_to_range(Span(1, 12, 1, 16), split_lines('\ufeffx = "😀"; f(mask)\n'), utf16_units, True)
    assert start == Position(0, 13)


def test_lines_split_only_where_python_and_lsp_do() -> None:
    assert split_lines("a\x0cb\u2028c\r\nd\re\n") == ["a\x0cb\u2028c\r\n", "d\r", "e\n"]


texts = st.lists(st.sampled_from(["a", "é", "😀", "\n", "\r\n", "\r", " ", "\u2028"]), max_size=30).map("".join)


@settings(max_examples=300, deadline=None)
@given(texts, texts)
def test_line_edits_turn_old_into_new(old: str, new: str) -> None:
    edits = [
        {
            "range": {
                "start": {"line": e.start.line, "character": e.start.character},
                "end": {"line": e.end.line, "character": e.end.character},
            },
            "newText": e.new_text,
        }
        for e in line_edits(old, new)
    ]
    assert apply_text_edits(old, edits) == new


def test_save_lints_the_buffer_and_changes_in_a_burst_are_linted_once(client: LspClient, tmp_path: Path) -> None:
    path = tmp_path / "model.py"
    path.write_text("x = 1\n")  # the disk never has the finding: only the buffer does
    assert len(client.open(path, NESTED)) == 1
    start = len(client.notifications)
    client.notify("textDocument/didSave", {"textDocument": {"uri": path.as_uri()}})
    assert [d["code"] for d in client.diagnostics(path.as_uri(), start)] == ["ESP001"]

    start = len(client.notifications)
    for version in range(2, 12):  # ten keystrokes, sent faster than the typing pause
        change = {"textDocument": {"uri": path.as_uri(), "version": version}, "contentChanges": [{"text": NESTED}]}
        client.notify("textDocument/didChange", change)
    assert len(client.diagnostics(path.as_uri(), start, version=11)) == 1
    client.settle(0.5)
    published = [m for m in client.notifications[start:] if m["method"] == "textDocument/publishDiagnostics"]
    assert len(published) < 10, len(published)


def _noqa_result(source: str) -> str | None:
    config = Config(root=Path.cwd())
    buffer = Buffer.from_text(source)
    (finding,) = lint_buffer(buffer, "model.py", config).findings
    return add_noqa(buffer, "model.py", config, finding)


def test_noqa_extends_an_existing_list_and_is_withheld_where_no_comment_can_go() -> None:
    call = "    return create_block_mask(causal, None, None, n, n)"
    listed = NESTED.replace(call, f"{call}  # noqa: E501")
    assert _noqa_result(listed) == NESTED.replace(call, f"{call}  # noqa: E501, ESP001")
    # A comment after a line continuation would be a syntax error: the action is not offered.
    continued = NESTED.replace(call, "    return create_block_mask(causal, \\\n        None, None, n, n)")
    assert _noqa_result(continued) is None


def test_notebook_cells_get_diagnostics_and_the_cli_fix(run_cli: RunCli, client: LspClient, tmp_path: Path) -> None:
    """A notebook open in the editor (LSP notebook sync): findings land on their cell, and the quick fix
    edits the cells exactly as `esper-lint --fix nb.ipynb` rewrites them."""
    header, body = NESTED.split("\n\n\n", 1)
    sources = [header + "\n", "# Masks\nSome *markdown*.", body]
    kinds = ["code", "markdown", "code"]
    notebook = {
        "cells": [
            {
                "cell_type": kind,
                "metadata": {},
                "source": text,
                **({"outputs": [], "execution_count": None} if kind == "code" else {}),
            }
            for kind, text in zip(kinds, sources, strict=True)
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "masks.ipynb"
    path.write_text(json.dumps(notebook))
    run_cli("--fix", "--no-cache", str(path), cwd=tmp_path)
    expected = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]
    assert expected[2] != sources[2]  # the CLI did fix the third cell

    cell_uris = [f"vscode-notebook-cell:{path}#C{n}" for n in range(1, 4)]
    start = len(client.notifications)
    client.notify(
        "notebookDocument/didOpen",
        {
            "notebookDocument": {
                "uri": path.as_uri(),
                "notebookType": "jupyter-notebook",
                "version": 1,
                "cells": [
                    {"kind": 2 if kind == "code" else 1, "document": uri}
                    for kind, uri in zip(kinds, cell_uris, strict=True)
                ],
            },
            "cellTextDocuments": [
                {"uri": uri, "languageId": "python" if kind == "code" else "markdown", "version": 1, "text": text}
                for kind, uri, text in zip(kinds, cell_uris, sources, strict=True)
            ],
        },
    )
    (diagnostic,) = client.diagnostics(cell_uris[2], start)
    assert diagnostic["code"] == "ESP001"
    assert diagnostic["range"]["start"] == {"line": 4, "character": 29}  # line 5 of the cell, not of the notebook
    assert client.diagnostics(cell_uris[0], start) == []

    params = {
        "textDocument": {"uri": cell_uris[2]},
        "range": diagnostic["range"],
        "context": {"diagnostics": [diagnostic]},
    }
    action = fix_action(client.request("textDocument/codeAction", params))
    assert action is not None
    edit = resolved(client, action)["edit"]
    texts = dict(zip(cell_uris, sources, strict=True))
    for change in edit["documentChanges"]:
        uri = change["textDocument"]["uri"]
        texts[uri] = apply_text_edits(texts[uri], change["edits"])
    assert [texts[uri] for uri in cell_uris] == expected
    # Typing the fixed text into the cell (notebookDocument/didChange) clears its finding; closing clears all.
    start = len(client.notifications)
    content = {"document": {"uri": cell_uris[2], "version": 2}, "changes": [{"text": expected[2]}]}
    client.notify(
        "notebookDocument/didChange",
        {"notebookDocument": {"uri": path.as_uri(), "version": 2}, "change": {"cells": {"textContent": [content]}}},
    )
    assert client.diagnostics(cell_uris[2], start) == []
    start = len(client.notifications)
    client.notify("notebookDocument/didClose", {"notebookDocument": {"uri": path.as_uri()}, "cellTextDocuments": []})
    assert client.diagnostics(cell_uris[0], start) == []
