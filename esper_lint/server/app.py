"""`esper-lint server`: the language server (pygls over stdio).

Diagnostics are published on open and save at once, and on change after a short pause in typing. Code
actions: each fixable finding's rule fix (`quickfix`), `# noqa: CODE` for any finding, and the whole
file's safe fixes (`source.fixAll.esper-lint`). Jupyter notebooks (LSP notebook sync) are linted and fixed
as the CLI does `nb.ipynb`, with diagnostics and edits on their cells. Every edit is computed by the same
functions as `esper-lint --fix` on the buffer's bytes (linting.py); nothing here decides what a finding or a
fix is.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from .. import __version__
from ..config import Config, ConfigError
from ..core.findings import FileError, FileResult, Finding
from ..rules import RULES_BY_CODE
from .linting import ConfigCache, FixOutcome, add_noqa, fix_buffer, fix_cells, internal_error, lint_buffer, lint_cells
from .text import Buffer, BufferEncodingError, Edit, Position, UnitCounter, line_edits, span_to_range, split_lines

SOURCE = "esper-lint"
FIX_ALL_KIND = "source.fixAll.esper-lint"
FIX_ALL_TITLE = "esper-lint: apply all safe fixes"
# A pause in typing this long (seconds) before a changed buffer is linted: keystrokes in a burst cost one lint.
DEBOUNCE_SECONDS = 0.15
PYTHON_SUFFIXES = (".py", ".pyi")


@dataclass
class DocumentState:
    """The last lint of one open buffer, and the fixes computed for that exact text (by rule, None = all)."""

    version: int | None
    text: str
    path: str
    buffer: Buffer | None = None
    config: Config | None = None
    result: FileResult | None = None
    fixes: dict[str | None, FixOutcome] = field(default_factory=dict)
    noqa: dict[tuple[str, int], str | None] = field(default_factory=dict)  # (code, line) -> text with the comment


@dataclass
class NotebookState:
    """The last lint of one open notebook: its cells (document uri or None for markdown) and findings."""

    version: int
    path: str
    cell_uris: list[str | None]
    cells: list[tuple[bool, str]]
    config: Config | None = None
    result: FileResult | None = None
    fixes: dict[str | None, tuple[list[str] | None, int]] = field(default_factory=dict)

    def cell_number(self, uri: str) -> int | None:
        return self.cell_uris.index(uri) + 1 if uri in self.cell_uris else None


class EsperLintServer(LanguageServer):
    def __init__(self) -> None:
        python_cells = types.NotebookDocumentFilterWithCells(cells=[types.NotebookCellLanguage(language="python")])
        super().__init__(
            "esper-lint",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Full,
            notebook_document_sync=types.NotebookDocumentSyncOptions(notebook_selector=[python_cells]),
        )
        self.configs = ConfigCache()
        self.documents: dict[str, DocumentState] = {}
        self.notebooks: dict[str, NotebookState] = {}
        self.pending_versions: dict[str, int] = {}
        self._logged: dict[str, str] = {}  # uri -> the last problem logged for it (one line per new problem)

    # ------------------------------------------------------------------ linting
    def units(self) -> UnitCounter:
        codec = self.workspace.position_codec
        # ASCII counts the same in every unit; pygls counts the rest character by character.
        return lambda text: len(text) if text.isascii() else int(codec.client_num_units(text))

    def lint(self, uri: str) -> DocumentState | None:
        """Lint the buffer as it is now and publish its diagnostics."""
        document = self.workspace.get_text_document(uri)
        if not _is_python(document.language_id, uri):
            return None
        state = DocumentState(document.version, document.source, _path_for(uri, self.workspace.root_path))
        self.documents[uri] = state
        try:
            state.buffer = Buffer.from_text(state.text)
            state.config = self.configs.for_file(Path(state.path).absolute())
            state.result = lint_buffer(state.buffer, state.path, state.config)
        except BufferEncodingError as exc:
            state.result = FileResult(state.path, errors=[FileError(state.path, str(exc), kind="decode-error")])
        except ConfigError as exc:
            self.log_once(uri, f"esper-lint: {exc}", types.MessageType.Error)
            self.publish(uri, state, [])
            return state
        except Exception as exc:  # anything else: log it, keep serving
            state.result = FileResult(state.path, errors=[internal_error(state.path, "check", exc)])
        self.publish(uri, state, self.diagnostics(uri, state))
        return state

    def lint_notebook(self, uri: str) -> NotebookState | None:
        """Lint a notebook's cells as `esper-lint nb.ipynb` would; publish each code cell's diagnostics."""
        notebook = self.workspace.get_notebook_document(notebook_uri=uri)
        if notebook is None:
            return None
        cell_uris: list[str | None] = []
        cells: list[tuple[bool, str]] = []
        for cell in notebook.cells:
            document = self.workspace.text_documents.get(cell.document)
            code = cell.kind == types.NotebookCellKind.Code and document is not None
            cell_uris.append(cell.document if code else None)
            cells.append((code, document.source if code and document is not None else ""))
        state = NotebookState(notebook.version, _path_for(uri, self.workspace.root_path), cell_uris, cells)
        self.notebooks[uri] = state
        try:
            state.config = self.configs.for_file(Path(state.path).absolute())
            state.result = lint_cells(state.cells, state.path, state.config)
        except ConfigError as exc:
            self.log_once(uri, f"esper-lint: {exc}", types.MessageType.Error)
        except Exception as exc:  # anything else: log it, keep serving
            state.result = FileResult(state.path, errors=[internal_error(state.path, "check", exc)])
        result = state.result or FileResult(state.path)
        if state.config is not None:  # (a configuration error is logged above, once)
            if result.errors:
                self.log_once(uri, f"esper-lint: {result.errors[0]}", types.MessageType.Warning)
            else:
                self._logged.pop(uri, None)
        first_code_cell = next((n for n, cell_uri in enumerate(cell_uris, 1) if cell_uri), None)
        for number, cell_uri in enumerate(cell_uris, 1):
            if cell_uri is None:
                continue
            lines = split_lines(cells[number - 1][1])
            diagnostics = [self.diagnostic(f, lines) for f in result.findings if f.cell == number]
            diagnostics += [
                self.error_diagnostic(e)
                for e in result.errors
                if e.kind != "syntax-error" and (e.cell or first_code_cell) == number
            ]
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=cell_uri, diagnostics=diagnostics)
            )
        return state

    def notebook_of(self, cell_uri: str) -> tuple[str, NotebookState] | None:
        notebook = self.workspace.get_notebook_document(cell_uri=cell_uri)
        if notebook is None:
            return None
        state = self.notebooks.get(notebook.uri)
        if state is None or state.version != notebook.version:
            state = self.lint_notebook(notebook.uri)
        return (notebook.uri, state) if state is not None else None

    def notebook_actions(self, cell_uri: str, params: types.CodeActionParams) -> list[types.CodeAction]:
        """Quick fixes and fix-all for a notebook cell (the fixes are the notebook's: they may edit other cells)."""
        found = self.notebook_of(cell_uri)
        if found is None:
            return []
        uri, state = found
        number = state.cell_number(cell_uri)
        if state.result is None or number is None:
            return []
        only = params.context.only
        lines = split_lines(state.cells[number - 1][1])
        actions: list[types.CodeAction] = []
        base = {"notebook": uri, "version": state.version}
        for finding in state.result.findings:
            if finding.cell != number or not finding.fixable:
                continue
            start, end = span_to_range(finding.span, lines, self.units())
            if _overlaps(start, end, params.range) and _wanted(types.CodeActionKind.QuickFix.value, only):
                fix = types.CodeAction(
                    title=self.fix_title(finding, state.result.findings),
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[self.diagnostic(finding, lines)],
                    is_preferred=True,
                    data={**base, "fix": finding.code},
                )
                actions.extend(self.fix_action(fix))
        if _wanted(FIX_ALL_KIND, only) and any(f.fixable for f in state.result.findings):
            fix_all = types.CodeAction(title=FIX_ALL_TITLE, kind=FIX_ALL_KIND, data={**base, "fix": None})
            actions.extend(self.fix_action(fix_all))
        return actions

    def resolve_notebook(self, action: types.CodeAction, data: dict[str, Any]) -> types.CodeAction:
        state = self.notebooks.get(str(data.get("notebook")))
        notebook = self.workspace.get_notebook_document(notebook_uri=str(data.get("notebook")))
        if state is None or notebook is None or state.version != data.get("version") or state.config is None:
            return action
        code = data.get("fix")
        key = code if isinstance(code, str) else None
        if key not in state.fixes:
            state.fixes[key] = fix_cells(state.cells, state.path, state.config, key)
        new_cells, _ = state.fixes[key]
        if new_cells is None:
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Warning, message="esper-lint: no fix applied")
            )
            return action
        changes = []
        for cell_uri, (_, old), new in zip(state.cell_uris, state.cells, new_cells, strict=True):
            document = self.workspace.text_documents.get(cell_uri) if cell_uri else None
            if cell_uri is not None and document is not None and old != new:
                changes.append((cell_uri, document.version, old, new))
        action.edit = self.edit_documents(changes)
        return action

    def current(self, uri: str) -> DocumentState | None:
        """The lint of the buffer's current text (linting again when a change is still pending)."""
        state = self.documents.get(uri)
        document = self.workspace.get_text_document(uri)
        if state is None or state.text != document.source:
            state = self.lint(uri)
        return state

    def diagnostics(self, uri: str, state: DocumentState) -> list[types.Diagnostic]:
        result = state.result
        if result is None:
            return []
        lines = split_lines(state.text)
        bom = state.buffer.bom_in_text if state.buffer else False
        diagnostics = [self.diagnostic(finding, lines, bom) for finding in result.findings]
        for error in result.errors:
            if error.kind != "syntax-error":
                # The file was not checked: say so where the user looks, not only in the log.
                diagnostics.append(self.error_diagnostic(error))
        if result.errors:  # one log line per new problem, not one per keystroke
            self.log_once(uri, f"esper-lint: {result.errors[0]}", types.MessageType.Warning)
        else:
            self._logged.pop(uri, None)
        return diagnostics

    def diagnostic(self, finding: Finding, lines: list[str], bom: bool = False) -> types.Diagnostic:
        rule = RULES_BY_CODE.get(finding.code)
        start, end = span_to_range(finding.span, lines, self.units(), bom)
        return types.Diagnostic(
            range=types.Range(start=_position(start), end=_position(end)),
            message=finding.message,
            severity=types.DiagnosticSeverity.Warning,
            code=finding.code,
            code_description=_code_description(finding.code) if rule else None,
            source=SOURCE,
            data={"fixable": finding.fixable, "name": finding.name},
        )

    def error_diagnostic(self, error: FileError) -> types.Diagnostic:
        line = max((error.line or 1) - 1, 0)
        start = types.Position(line=line, character=0)
        return types.Diagnostic(
            range=types.Range(start=start, end=start),
            message=error.message,
            severity=types.DiagnosticSeverity.Error,
            code=error.kind,
            source=SOURCE,
        )

    def publish(self, uri: str, state: DocumentState, diagnostics: list[types.Diagnostic]) -> None:
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=state.version)
        )

    async def settled(self, uri: str, version: int) -> bool:
        """Debounce: after a pause, True when no newer change of `uri` arrived meanwhile (its mark is cleared)."""
        self.pending_versions[uri] = version
        await asyncio.sleep(DEBOUNCE_SECONDS)
        if self.pending_versions.get(uri) != version:
            return False
        del self.pending_versions[uri]
        return True

    def forget(self, uri: str) -> None:
        self.documents.pop(uri, None)
        self.pending_versions.pop(uri, None)
        self._logged.pop(uri, None)

    def log_once(self, uri: str, message: str, kind: types.MessageType) -> None:
        if self._logged.get(uri) != message:
            self._logged[uri] = message
            self.window_log_message(types.LogMessageParams(type=kind, message=message))

    # ------------------------------------------------------------------ fixes
    def fix(self, state: DocumentState, code: str | None) -> FixOutcome:
        """The fixed text for this buffer (one rule's fix, or all), computed once per text."""
        if code not in state.fixes:
            if state.buffer is None or state.config is None:
                state.fixes[code] = FixOutcome(None, 0)
            else:
                outcome = fix_buffer(state.buffer, state.path, state.config, code)
                if outcome.error is not None and outcome.error.kind == "internal-error":
                    self.window_log_message(
                        types.LogMessageParams(type=types.MessageType.Error, message=f"esper-lint: {outcome.error}")
                    )
                state.fixes[code] = outcome
        return state.fixes[code]

    def workspace_edit(self, uri: str, state: DocumentState, new_text: str) -> types.WorkspaceEdit:
        return self.edit_documents([(uri, state.version, state.text, new_text)])

    def edit_documents(self, changes: list[tuple[str, int | None, str, str]]) -> types.WorkspaceEdit:
        """Edits turning each document (uri, version, old text) into its new text, versioned where the client can."""
        edits = {uri: [_text_edit(e) for e in line_edits(old, new, self.units())] for uri, _, old, new in changes}
        supports_versions = bool(
            self.client_capabilities.workspace
            and self.client_capabilities.workspace.workspace_edit
            and self.client_capabilities.workspace.workspace_edit.document_changes
        )
        if supports_versions:
            return types.WorkspaceEdit(
                document_changes=[
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                        edits=edits[uri],
                    )
                    for uri, version, _, _ in changes
                ]
            )
        return types.WorkspaceEdit(changes=edits)

    def resolves_edits(self) -> bool:
        """Whether the client asks `codeAction/resolve` for an action's edit (then it is computed only when chosen)."""
        text_document = self.client_capabilities.text_document
        code_action = text_document.code_action if text_document else None
        resolve = code_action.resolve_support if code_action else None
        return bool(resolve and "edit" in resolve.properties)

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        if self.workspace.get_notebook_document(cell_uri=uri) is not None:
            return self.notebook_actions(uri, params)
        state = self.current(uri)
        if state is None or state.result is None:
            return []
        only = params.context.only
        actions: list[types.CodeAction] = []
        units = self.units()
        lines = split_lines(state.text)
        bom = state.buffer.bom_in_text if state.buffer else False
        for finding in state.result.findings:
            start, end = span_to_range(finding.span, lines, units, bom)
            if not _overlaps(start, end, params.range):
                continue
            diagnostic = self.diagnostic(finding, lines, bom)
            if _wanted(types.CodeActionKind.QuickFix.value, only):
                actions.extend(self.finding_actions(uri, state, finding, diagnostic))
        if _wanted(FIX_ALL_KIND, only) and any(f.fixable for f in state.result.findings):
            action = types.CodeAction(
                title=FIX_ALL_TITLE,
                kind=FIX_ALL_KIND,
                data={"uri": uri, "version": state.version, "fix": None},
            )
            actions.extend(self.fix_action(action))
        return actions

    def fix_action(self, action: types.CodeAction) -> list[types.CodeAction]:
        """The action to offer: with its edit left to `codeAction/resolve` when the client asks for it that
        way (a fix runs LibCST: only when chosen, not each time the cursor rests on a finding), else with
        its edit, or no action when the fix would change nothing."""
        if self.resolves_edits():
            return [action]
        resolved = self.resolve(action)
        return [resolved] if resolved.edit is not None else []

    def finding_actions(
        self, uri: str, state: DocumentState, finding: Finding, diagnostic: types.Diagnostic
    ) -> list[types.CodeAction]:
        actions = []
        if finding.fixable and state.result is not None:
            fix = types.CodeAction(
                title=self.fix_title(finding, state.result.findings),
                kind=types.CodeActionKind.QuickFix,
                diagnostics=[diagnostic],
                is_preferred=True,
                data={
                    "uri": uri,
                    "version": state.version,
                    "fix": finding.code,
                    "at": [finding.span.line, finding.span.column],
                },
            )
            actions.extend(self.fix_action(fix))
        if state.buffer is not None and state.config is not None:
            key = (finding.code, finding.span.line)
            if key not in state.noqa:  # linted again to prove it: once per text, not per cursor move
                state.noqa[key] = add_noqa(state.buffer, state.path, state.config, finding)
            with_noqa = state.noqa[key]
            if with_noqa is not None:
                actions.append(
                    types.CodeAction(
                        title=f"esper-lint: add `# noqa: {finding.code}`",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[diagnostic],
                        edit=self.workspace_edit(uri, state, with_noqa),
                    )
                )
        return actions

    def fix_title(self, finding: Finding, findings: list[Finding]) -> str:
        rule = RULES_BY_CODE.get(finding.code)
        label = f"{finding.code} ({rule.name})" if rule else finding.code
        same_rule = {(f.cell, f.span) for f in findings if f.code == finding.code and f.fixable}
        also = f", with {len(same_rule) - 1} other finding(s) of this rule" if len(same_rule) > 1 else ""
        return f"esper-lint: fix {label}{also}"

    def resolve(self, action: types.CodeAction) -> types.CodeAction:
        """Fill in a fix's edit (one rule's, or all) for the buffer it was offered on; none if it changed since.

        A fix the checker called possible can still be ruled out by the fixer, which sees the whole module:
        the action then comes back without an edit, and the reason is shown.
        """
        data: dict[str, Any] = action.data if isinstance(action.data, dict) else {}
        action.data = None
        if "notebook" in data:
            return self.resolve_notebook(action, data)
        uri, code = data.get("uri"), data.get("fix")
        state = self.current(uri) if isinstance(uri, str) else None
        if state is None or uri is None or state.version != data.get("version"):
            return action
        outcome = self.fix(state, code if isinstance(code, str) else None)
        if outcome.new_text is not None:
            action.edit = self.workspace_edit(uri, state, outcome.new_text)
        else:
            at = data.get("at")
            left = [f.message for f in outcome.remaining if [f.span.line, f.span.column] == at and f.code == code]
            reason = outcome.error.message if outcome.error else (left[0] if left else "nothing to change")
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Warning, message=f"esper-lint: no fix applied: {reason}")
            )
        return action


def _code_description(code: str) -> types.CodeDescription | None:
    """A link to the rule's page where the package declares where its docs live (as SARIF's helpUri)."""
    from ..reporters.sarif import help_uri

    uri = help_uri(RULES_BY_CODE[code])
    return types.CodeDescription(href=uri) if uri else None


def _position(position: Position) -> types.Position:
    return types.Position(line=position.line, character=position.character)


def _text_edit(edit: Edit) -> types.TextEdit:
    return types.TextEdit(
        range=types.Range(start=_position(edit.start), end=_position(edit.end)), new_text=edit.new_text
    )


def _overlaps(start: Position, end: Position, requested: types.Range) -> bool:
    return (start.line, start.character) <= (requested.end.line, requested.end.character) and (
        requested.start.line,
        requested.start.character,
    ) <= (end.line, end.character)


def _wanted(kind: str, only: Sequence[types.CodeActionKind | str] | None) -> bool:
    """LSP kinds are hierarchical: asking for `source` includes `source.fixAll.esper-lint`."""
    if only is None:
        return True
    asked = [k.value if isinstance(k, types.CodeActionKind) else k for k in only]
    return any(kind == k or kind.startswith(f"{k}.") for k in asked)


def _is_python(language_id: str | None, uri: str) -> bool:
    return language_id == "python" or urlparse(uri).path.endswith(PYTHON_SUFFIXES)


def _path_for(uri: str, root: str | None) -> str:
    """The file's path; an unsaved, untitled buffer is linted as if it were a file in the workspace root."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return to_fs_path(uri) or unquote(parsed.path)
    name = Path(unquote(parsed.path)).name or "untitled"
    return str(Path(root or ".") / (name if name.endswith(PYTHON_SUFFIXES) else f"{name}.py"))


def create_server() -> EsperLintServer:
    server = EsperLintServer()

    @server.feature(types.INITIALIZED)
    def initialized(ls: EsperLintServer, params: types.InitializedParams) -> None:
        watched = ls.client_capabilities.workspace and ls.client_capabilities.workspace.did_change_watched_files
        if watched and watched.dynamic_registration:
            # Re-lint open buffers when a configuration changes on disk (the config cache re-reads it).
            watcher = types.FileSystemWatcher(glob_pattern="**/pyproject.toml")
            registration = types.Registration(
                id="esper-lint-pyproject",
                method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
                register_options=types.DidChangeWatchedFilesRegistrationOptions(watchers=[watcher]),
            )
            ls.client_register_capability(types.RegistrationParams(registrations=[registration]))

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: EsperLintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.lint(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: EsperLintServer, params: types.DidSaveTextDocumentParams) -> None:
        ls.lint(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: EsperLintServer, params: types.DidChangeTextDocumentParams) -> None:
        uri, version = params.text_document.uri, params.text_document.version
        if await ls.settled(uri, version) and uri in ls.workspace.text_documents:
            state = ls.documents.get(uri)
            if state is None or state.version != version:  # a code action may have linted it meanwhile
                ls.lint(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: EsperLintServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.forget(uri)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_opened(ls: EsperLintServer, params: types.DidOpenNotebookDocumentParams) -> None:
        ls.lint_notebook(params.notebook_document.uri)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_SAVE)
    def notebook_saved(ls: EsperLintServer, params: types.DidSaveNotebookDocumentParams) -> None:
        ls.lint_notebook(params.notebook_document.uri)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    async def notebook_changed(ls: EsperLintServer, params: types.DidChangeNotebookDocumentParams) -> None:
        uri, version = params.notebook_document.uri, params.notebook_document.version
        if await ls.settled(uri, version):
            state = ls.notebooks.get(uri)
            if state is None or state.version != version:  # a code action may have linted it meanwhile
                ls.lint_notebook(uri)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def notebook_closed(ls: EsperLintServer, params: types.DidCloseNotebookDocumentParams) -> None:
        uri = params.notebook_document.uri
        state = ls.notebooks.pop(uri, None)
        ls.forget(uri)
        for cell_uri in state.cell_uris if state else []:
            if cell_uri is not None:
                ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=cell_uri, diagnostics=[]))

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files_changed(ls: EsperLintServer, params: types.DidChangeWatchedFilesParams) -> None:
        ls.configs.clear()
        for uri in list(ls.documents):
            ls.lint(uri)
        for uri in list(ls.notebooks):
            ls.lint_notebook(uri)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND], resolve_provider=True),
    )
    def code_action(ls: EsperLintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return ls.code_actions(params)

    @server.feature(types.CODE_ACTION_RESOLVE)
    def code_action_resolve(ls: EsperLintServer, action: types.CodeAction) -> types.CodeAction:
        return ls.resolve(action)

    return server


def serve() -> None:
    server = create_server()
    # Everything alive now (the LSP library's type machinery, the rules) lives as long as the server: keep it
    # out of the garbage collector's scans, which each lint's many short-lived AST nodes trigger (~13% CPU).
    gc.freeze()
    server.start_io()
