"""The result cache: findings and errors per file, keyed on the file's content.

One JSON file per (esper-lint version, Python version, effective configuration) under
`.esper_lint_cache/` (or `cache-dir`). An entry is reused only when the file's path and a BLAKE2 digest
of its bytes match, so an edited file is always re-analysed, and changing the version or any setting
that can change findings (rule selection, per-file ignores, mask APIs) starts a separate cache file.
JSON, not pickle: a cache directory that arrives with a cloned tree must never be able to run code.
Writes go to a temporary file and are renamed into place, so concurrent runs never read a torn file
(the last writer wins; a lost entry is only recomputed).

A file's findings may rest on facts of other project modules it imports (esper_lint/project.py): its
entry then keeps the questions asked and a fingerprint of each answer, and is reused only while every
answer is the same. The cache also keeps what each module offers its importers (`modules`), by the
module's content, so that a one-file run does not parse the modules it imports again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import __version__
from .config import Config
from .core.findings import FileError, FileResult, Finding
from .core.interrupts import interrupts_deferred

CACHE_DIR_NAME = ".esper_lint_cache"
# Entries are dropped oldest-first beyond this many files, so a cache stays bounded as trees change.
MAX_ENTRIES = 200_000
# Results with these error kinds depend on the machine or the moment, not on the file's bytes.
_UNCACHEABLE_KINDS = frozenset({"io-error", "timeout", "internal-error"})


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Identifies the analysis code itself, beyond the version number: an editable install (or a
    patched one) that changes a rule must not be served findings cached by the old code. Stats of
    the package's own modules are enough (a few dozen files; no content hashing on the hot path)."""
    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for module in sorted(package.rglob("*.py")):
        st = module.stat()
        h.update(f"{module.relative_to(package)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:12]


def digest(source: bytes) -> str:
    return hashlib.blake2b(source, digest_size=16).hexdigest()


def cache_dir(config: Config) -> Path:
    return config.cache_dir if config.cache_dir is not None else config.root / CACHE_DIR_NAME


class ResultCache:
    def __init__(self, config: Config) -> None:
        self.directory = cache_dir(config)
        key = f"{__version__}-{code_fingerprint()}-py{sys.version_info[0]}{sys.version_info[1]}-{config.fingerprint()}"
        self.file = self.directory / f"results-{key}.json"
        self._entries: dict[str, list[Any]] | None = None
        self._modules: dict[str, list[Any]] = {}
        self._dirty = False

    def _load(self) -> dict[str, list[Any]]:
        if self._entries is None:
            try:
                with open(self.file, encoding="utf-8") as fh:
                    data = json.load(fh)
                entries = data.get("entries") if isinstance(data, dict) else None
                modules = data.get("modules") if isinstance(data, dict) else None
                self._entries = entries if isinstance(entries, dict) else {}
                self._modules = modules if isinstance(modules, dict) else {}
            except (OSError, ValueError):  # missing, unreadable or corrupt: start afresh
                self._entries = {}
        return self._entries

    @staticmethod
    def _key(path: str) -> str:
        return os.path.abspath(path)

    def get(
        self, path: str, source_digest: str, still_hold: Callable[[dict[str, str]], bool] | None = None
    ) -> FileResult | None:
        """The cached result for these bytes; with facts of other modules, only if `still_hold` says each
        answer it rested on is still the same (without `still_hold`, such a result is not reused)."""
        entry = self._load().get(self._key(path))
        if not entry or entry[0] != source_digest:
            return None
        used = entry[3] if len(entry) > 3 else None
        if used and (not isinstance(used, dict) or still_hold is None or not still_hold(used)):
            return None
        try:
            findings = [Finding.from_dict({**f, "path": path}) for f in entry[1]]
            errors = [FileError.from_dict({**e, "path": path}) for e in entry[2]]
        except (KeyError, TypeError, IndexError):
            return None
        return FileResult(path, findings=findings, errors=errors)

    def put(self, path: str, source_digest: str, result: FileResult, used: dict[str, str] | None = None) -> None:
        """Keep `result` for these bytes; `used`: the questions about other modules it rested on, with a
        fingerprint of each answer (project.py)."""
        if any(e.kind in _UNCACHEABLE_KINDS for e in result.errors):
            return
        entries = self._load()
        key = self._key(path)
        entries.pop(key, None)  # re-insert: dict order is least recently stored first
        entries[key] = [
            source_digest,
            [f.to_dict() for f in result.findings],
            [e.to_dict() for e in result.errors],
        ]
        if used:
            entries[key].append(used)
        self._dirty = True

    def get_module(self, path: str, source_digest: str) -> tuple[bool, dict[str, Any] | None]:
        """(True, what the module offers its importers) if kept for these bytes; (False, None) if not."""
        self._load()
        entry = self._modules.get(self._key(path))
        if not entry or len(entry) != 2 or entry[0] != source_digest:
            return False, None
        exports = entry[1]
        return (True, exports) if exports is None or isinstance(exports, dict) else (False, None)

    def put_module(self, path: str, source_digest: str, exports: dict[str, Any] | None) -> None:
        self._load()
        key = self._key(path)
        self._modules.pop(key, None)
        self._modules[key] = [source_digest, exports]
        self._dirty = True

    def save(self) -> None:
        """Write the cache if anything changed. A cache that cannot be written is skipped silently:
        the run's results do not depend on it."""
        if not self._dirty or self._entries is None:
            return
        entries = self._entries
        for table in (entries, self._modules):
            if len(table) > MAX_ENTRIES:
                for key in list(table)[: len(table) - MAX_ENTRIES]:
                    del table[key]
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            _mark_cache_dir(self.directory)
            import tempfile  # only when writing: a --no-cache run never needs it

            with interrupts_deferred():  # Ctrl-C waits: no temporary file is left in the cache folder
                fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
                try:
                    with os.fdopen(fd, "w", encoding="utf-8") as fh:
                        data = {"version": __version__, "entries": entries, "modules": self._modules}
                        json.dump(data, fh, separators=(",", ":"))
                    os.replace(tmp, self.file)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
        except OSError:
            return
        self._dirty = False


def _mark_cache_dir(directory: Path) -> None:
    """Like ruff's cache: ignored by git, and tagged for backup tools (https://bford.info/cachedir/)."""
    gitignore = directory / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("# Automatically created by esper-lint.\n*\n", encoding="utf-8")
    tag = directory / "CACHEDIR.TAG"
    if not tag.exists():
        tag.write_text(
            "Signature: 8a477f597d28d172789f06886806bc55\n"
            "# This file is a cache directory tag created by esper-lint.\n",
            encoding="utf-8",
        )
