"""A small synchronous LSP client for the server tests and the latency benchmark.

It speaks JSON-RPC over the real server process's stdin/stdout (the way an editor does), answers the
server's own requests (capability registration), and applies workspace edits with code of its own,
independent of the server's: a test that applies an edit checks the server's positions, not its helpers.
"""

from __future__ import annotations

import codecs
import io
import json
import queue
import re
import subprocess
import sys
import threading
import time
import tokenize
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

SERVER_COMMAND = (sys.executable, "-m", "esper_lint", "server")

# What VS Code announces for the features the server uses.
DEFAULT_CAPABILITIES: dict[str, Any] = {
    "general": {"positionEncodings": ["utf-16"]},
    "workspace": {
        "workspaceEdit": {"documentChanges": True},
        "didChangeWatchedFiles": {"dynamicRegistration": True},
    },
    "textDocument": {
        "synchronization": {"didSave": True, "dynamicRegistration": False},
        "publishDiagnostics": {"versionSupport": True, "codeDescriptionSupport": True, "dataSupport": True},
        "codeAction": {
            "codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["quickfix", "source", "source.fixAll"]}},
            "resolveSupport": {"properties": ["edit"]},
            "dataSupport": True,
        },
    },
}


class LspError(Exception):
    pass


class LspClient:
    def __init__(
        self,
        cwd: Path,
        command: Sequence[str] = SERVER_COMMAND,
        stderr: BinaryIO | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr if stderr is not None else subprocess.DEVNULL,
            cwd=cwd,
            env=env,
        )
        self.cwd = cwd
        self._inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._responses: dict[int, dict[str, Any]] = {}
        self.notifications: list[dict[str, Any]] = []
        self.server_requests: list[dict[str, Any]] = []
        self._next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    # ------------------------------------------------------------------ wire
    def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    self._inbox.put(None)
                    return
                if line in (b"\r\n", b"\n"):
                    break
                name, _, value = line.decode("ascii").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            assert length is not None, "a message without Content-Length"
            self._inbox.put(json.loads(stream.read(length)))

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        stdin.flush()

    def _pump(self, deadline: float) -> bool:
        """Handle one incoming message; False when none came before the deadline."""
        try:
            message = self._inbox.get(timeout=max(deadline - time.monotonic(), 0.001))
        except queue.Empty:
            return False
        if message is None:
            raise LspError(f"the server exited (code {self.process.poll()})")
        if "method" in message and "id" in message:  # a request from the server: accept it
            self.server_requests.append(message)
            self._send({"id": message["id"], "result": None})
        elif "method" in message:
            self.notifications.append(message)
        else:
            self._responses[message["id"]] = message
        return True

    def request(self, method: str, params: Any, timeout: float = 60) -> Any:
        self._next_id += 1
        request_id = self._next_id
        self._send({"id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while request_id not in self._responses:
            if not self._pump(deadline):
                raise LspError(f"no answer to {method} within {timeout} s")
        response = self._responses.pop(request_id)
        if "error" in response:
            raise LspError(f"{method}: {response['error']}")
        return response.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30, start: int = 0
    ) -> dict[str, Any]:
        """The first notification (from index `start` on) that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        checked = start
        while True:
            while checked < len(self.notifications):
                if predicate(self.notifications[checked]):
                    return self.notifications[checked]
                checked += 1
            if not self._pump(deadline) and time.monotonic() >= deadline:
                raise LspError("the expected notification did not come")

    def settle(self, seconds: float) -> None:
        """Take in whatever arrives during `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._pump(deadline)

    # ------------------------------------------------------------------ LSP
    def initialize(self, capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "initialize",
            {
                "processId": None,
                "rootUri": self.cwd.as_uri(),
                "workspaceFolders": [{"uri": self.cwd.as_uri(), "name": self.cwd.name}],
                "capabilities": DEFAULT_CAPABILITIES if capabilities is None else capabilities,
            },
        )
        self.notify("initialized", {})
        return result

    def open(self, path: Path, text: str, version: int = 1) -> list[dict[str, Any]]:
        """didOpen; returns the diagnostics published for it."""
        start = len(self.notifications)
        uri = path.as_uri()
        item = {"uri": uri, "languageId": "python", "version": version, "text": text}
        self.notify("textDocument/didOpen", {"textDocument": item})
        return self.diagnostics(uri, start, version)

    def change(self, path: Path, text: str, version: int) -> list[dict[str, Any]]:
        """didChange with the whole text; returns the diagnostics published for that version."""
        start = len(self.notifications)
        uri = path.as_uri()
        params = {"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}
        self.notify("textDocument/didChange", params)
        return self.diagnostics(uri, start, version)

    def diagnostics(self, uri: str, start: int, version: int | None = None) -> list[dict[str, Any]]:
        def published(message: dict[str, Any]) -> bool:
            params = message["params"]
            return (
                message["method"] == "textDocument/publishDiagnostics"
                and params["uri"] == uri
                and (version is None or params.get("version") == version)
            )

        diagnostics: list[dict[str, Any]] = self.wait_for(published, start=start)["params"]["diagnostics"]
        return diagnostics

    def code_actions(
        self, path: Path, diagnostic: dict[str, Any], only: list[str] | None = None
    ) -> list[dict[str, Any]]:
        context: dict[str, Any] = {"diagnostics": [diagnostic]}
        if only is not None:
            context["only"] = only
        params = {"textDocument": {"uri": path.as_uri()}, "range": diagnostic["range"], "context": context}
        actions: list[dict[str, Any]] = self.request("textDocument/codeAction", params) or []
        return actions

    def logs(self, start: int = 0) -> list[str]:
        return [m["params"]["message"] for m in self.notifications[start:] if m["method"] == "window/logMessage"]

    def shutdown(self) -> int:
        self.request("shutdown", None)
        self.notify("exit", None)
        return self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# ---------------------------------------------------------------------- edits, applied independently
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _offset(text: str, line: int, character: int, encoding: str = "utf-16") -> int:
    """String index of an LSP position (lines end at \\r\\n, \\r or \\n; `character` in code units)."""
    starts = [0] + [m.end() for m in _LINE_BREAK.finditer(text)]
    if line >= len(starts):
        return len(text)
    index = starts[line]
    end_match = _LINE_BREAK.search(text, index)
    line_end = end_match.start() if end_match else len(text)
    width = {"utf-16": lambda c: len(c.encode("utf-16-le")) // 2, "utf-8": lambda c: len(c.encode()), "utf-32": len}
    counted = 0
    while index < line_end and counted < character:
        counted += width[encoding](text[index])
        index += 1
    return index


def apply_text_edits(text: str, edits: list[dict[str, Any]], encoding: str = "utf-16") -> str:
    located = []
    for edit in edits:
        start, end = edit["range"]["start"], edit["range"]["end"]
        located.append(
            (
                _offset(text, start["line"], start["character"], encoding),
                _offset(text, end["line"], end["character"], encoding),
                edit["newText"],
            )
        )
    for start, end, new in sorted(located, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def apply_workspace_edit(text: str, uri: str, edit: dict[str, Any]) -> str:
    if edit.get("documentChanges"):
        for change in edit["documentChanges"]:
            assert change["textDocument"]["uri"] == uri
            text = apply_text_edits(text, change["edits"])
        return text
    return apply_text_edits(text, edit["changes"][uri])


def editor_text(source: bytes) -> tuple[str, str, bool]:
    """What an editor shows for a file's bytes: (text, encoding, had a BOM). The BOM is not in the text."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(source).readline)
    bom = source.startswith(codecs.BOM_UTF8)
    text = source.decode("utf-8-sig" if bom else encoding)
    return text, encoding, bom


def editor_bytes(text: str, encoding: str, bom: bool) -> bytes:
    """The bytes an editor writes for `text`, as it read the file (BOM restored)."""
    data = text.encode("utf-8" if encoding == "utf-8-sig" else encoding)
    return codecs.BOM_UTF8 + data if bom else data
