"""`esper-lint server`: a Language Server Protocol server for editors (see docs/editors.md).

The LSP library (pygls) is an optional dependency, in the `server` extra: the linter itself, its
pre-commit hook and its flake8 plugin never need it.
"""

from __future__ import annotations

import sys

INSTALL_HINT = "pip install 'esper-lint[server]'"


def main() -> int:
    """Serve LSP over stdin/stdout until the client says exit; 2 when the LSP library is missing."""
    try:
        from .app import serve
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in ("pygls", "lsprotocol"):
            raise
        print(
            f"esper-lint: error: `esper-lint server` needs the language-server library ({exc.name}): {INSTALL_HINT}",
            file=sys.stderr,
        )
        return 2
    serve()
    return 0
