"""The project index: what the modules of the checked project offer each other (issue 21, item 3).

A mask function, factory, compiled `create_block_mask` or pass-through helper imported from another
module of the same project (`from .masks import document`, `from mypkg.masks import causal`,
`import mypkg.masks as m; m.causal`) is resolved to its definition, and its facts are used at the call.

- **Which modules.** The project root is, as ruff finds it, the folder of the `pyproject.toml` the
  configuration came from, else of the nearest `pyproject.toml` above the checked paths, else their
  common folder. A relative import is resolved from the importing file's folder; an absolute one from
  the folder above the importing file's top package (its own folder for a script), then the root, then
  `root/src`. Only `.py` files count; a module found there need not be among the checked files.
- **What a module offers** is computed from that module alone (`analysis/module_exports.py`), once per
  run and per content: it is kept in the result cache by the module's digest, so a one-file run parses
  an imported module only when it changed. Names that only re-export (`from .masks import causal` in
  an `__init__.py`) are followed, at most `_MAX_REEXPORTS` deep and never round a cycle.
- **Lazily, and only what is asked.** The analysis asks about a name only where it needs one (a mask
  argument, a factory call, a callee, a function a mask calls); a callee is looked for only in a module
  that spells a mask API's name, so most imports cost a `stat` and nothing is parsed.
- **What invalidates a cached result.** Each file's questions and a fingerprint of each answer are kept
  with its result (`cache.py`); the result is reused only if every question, asked again, gets the
  same answer. Editing a comment in `masks.py` changes nothing; a mask that starts reading `b`, a new
  module that shadows another, or a module that stops parsing changes the answer, and the importer is
  analysed again.
- **The same answers everywhere.** An answer is a function of the files on disk (the language server
  may lay its open buffers over them), never of which process asks or in which order: serial and
  parallel runs, flake8 and the server give the same findings for the same files. The analysis never
  reads a file: it gets a `ProjectNames` for its module (analysis/imported_names.py) through the
  configuration (`Config.with_project`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from .config import Config

if TYPE_CHECKING:  # imported on use: a run whose files import nothing of the project never loads them
    from .analysis.imported_names import Imported
    from .cache import ResultCache

_MAX_REEXPORTS = 8
_CALLABLE_KINDS = ("alias", "helper")
# Paths that name no file on disk (stdin without --stdin-filename): no folder to resolve relative imports from.
_NO_FILE = frozenset({"-", "<stdin>", "stdin"})

Exports = dict[str, dict[str, Any]]
Answer: TypeAlias = "Imported | None"


def project_root(config: Config, paths: Sequence[str]) -> Path:
    """The folder of the configuration's pyproject.toml, else of the nearest one above the common folder of
    `paths`, else that folder (as ruff finds a project's root)."""
    if config.source is not None and config.source.name == "pyproject.toml":
        return config.root
    named = [p for p in paths if p not in _NO_FILE]
    folders = [os.path.abspath(p if os.path.isdir(p) else os.path.dirname(p) or ".") for p in named]
    try:
        common = Path(os.path.commonpath(folders)) if folders else Path.cwd()
    except ValueError:  # paths on different drives
        common = Path.cwd()
    for folder in (common, *common.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return common


class ProjectIndex:
    """Module-level facts of the project's modules, computed on demand and once, kept in the cache.

    `overlay` maps absolute paths to bytes that replace the file on disk (the server's open buffers).
    """

    def __init__(
        self,
        config: Config,
        paths: Sequence[str],
        cache: ResultCache | None = None,
        overlay: Mapping[str, bytes] | None = None,
        root: Path | None = None,
    ) -> None:
        self.config = config
        self.root = root if root is not None else project_root(config, paths)
        self.cache = cache
        self.overlay = dict(overlay or {})
        self._root_text = str(self.root)
        self._bases_src = [self._root_text, os.path.join(self._root_text, "src")]
        self._is_file: dict[str, bool] = {}
        self._sources: dict[str, tuple[tuple[int, int, int] | None, bytes | None, str]] = {}
        self._exports: dict[str, tuple[str, Exports | None]] = {}  # path -> (digest, exports)
        # Exports computed (not read from the cache) since `take_computed`: the cache keeps them.
        self.computed: dict[str, tuple[str, Exports | None]] = {}
        self._used: dict[str, dict[str, Answer]] = {}  # importing path -> question -> answer

    # ------------------------------------------------------------------ what a run asks
    def names_for(self, path: str) -> FileNames:
        """The answers for one importing file; its questions are recorded for `used_by`."""
        used = self._used.setdefault(path, {})
        return FileNames(self, None if path in _NO_FILE else os.path.abspath(path), used)

    def used_by(self, path: str) -> dict[str, str]:
        """The questions `path`'s analysis asked, with a fingerprint of each answer (and forget them)."""
        return {question: _fingerprint(answer) for question, answer in self._used.pop(path, {}).items()}

    def still_hold(self, path: str, used: dict[str, str]) -> bool:
        """Does every question `path`'s cached result rested on get the same answer now?"""
        names = FileNames(self, None if path in _NO_FILE else os.path.abspath(path), {})
        for question, fingerprint in used.items():
            kind, _, name = question.partition(":")
            if kind not in ("f", "c"):
                return False
            if _fingerprint(names.lookup(name, functions=kind == "f")) != fingerprint:
                return False
        return True

    def take_computed(self) -> dict[str, tuple[str, Exports | None]]:
        computed, self.computed = self.computed, {}
        return computed

    def refresh(self) -> None:
        """Forget which files exist (a long-running server calls this before each check); what a module
        offers is kept by its content and re-read when the file changes."""
        self._is_file.clear()

    # ------------------------------------------------------------------ answers
    def lookup(self, importer: str | None, qualified: str, functions: bool, depth: int = 0) -> Imported | None:
        if depth > _MAX_REEXPORTS:
            return None
        level = len(qualified) - len(qualified.lstrip("."))
        parts = qualified[level:].split(".")
        attribute = parts.pop()
        if not attribute:
            return None
        file = self.find_module(importer, "." * level + ".".join(parts))
        if file is None or file == importer or not self.may_bind(file, attribute, functions):
            return None
        entry = (self.exports(file) or {}).get(attribute)
        if entry is None:
            return None
        kind = entry.get("kind")
        if kind == "reexport":
            target = entry.get("target")
            return self.lookup(file, target, functions, depth + 1) if isinstance(target, str) else None
        if (kind in _CALLABLE_KINDS) == functions:  # not what was asked for
            return None
        from .analysis.imported_names import Imported

        return Imported(attribute, entry, self.display(file))

    def display(self, file: str) -> str:
        """The file as messages name it: relative to the project root when under it."""
        try:
            return Path(file).relative_to(self.root).as_posix()
        except ValueError:
            return Path(file).as_posix()

    # ------------------------------------------------------------------ modules
    def find_module(self, importer: str | None, module: str) -> str | None:
        """The `.py` file of `module` (dotted; leading dots: relative to `importer`'s folder)."""
        level = len(module) - len(module.lstrip("."))
        parts = [p for p in module[level:].split(".") if p]
        if level:
            if importer is None:
                return None
            base = os.path.dirname(importer)
            for _ in range(level - 1):
                base = os.path.dirname(base)
            return self._file_in(base, parts)
        if not parts:
            return None
        for base in self._bases(importer):
            found = self._file_in(base, parts)
            if found is not None:
                return found
        return None

    def _bases(self, importer: str | None) -> list[str]:
        bases: list[str] = []
        if importer is not None:
            folder = os.path.dirname(importer)
            while self._exists(os.path.join(folder, "__init__.py")) and os.path.dirname(folder) != folder:
                folder = os.path.dirname(folder)
            bases.append(folder)
        return [*bases, *(b for b in self._bases_src if b not in bases)]

    def _file_in(self, base: str, parts: list[str]) -> str | None:
        path = os.path.join(base, *parts)
        candidates = (
            (path + ".py", os.path.join(path, "__init__.py")) if parts else (os.path.join(base, "__init__.py"),)
        )
        for candidate in candidates:
            if self._exists(candidate):
                return candidate
        return None

    def _exists(self, path: str) -> bool:
        found = self._is_file.get(path)
        if found is None:
            found = self._is_file[path] = path in self.overlay or os.path.isfile(path)
        return found

    def source(self, file: str) -> tuple[bytes | None, str]:
        """The module's bytes (None: unreadable) and their digest, read again only when the file changed."""
        if file in self.overlay:
            buffer = self.overlay[file]
            return buffer, _digest(buffer)
        try:
            info = os.stat(file)
            stamp: tuple[int, int, int] | None = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            stamp = None
        known = self._sources.get(file)
        if known is not None and known[0] == stamp and stamp is not None:
            return known[1], known[2]
        try:
            with open(file, "rb") as fh:
                data: bytes | None = fh.read()
        except OSError:
            data = None
        digest = _digest(data) if data is not None else ""
        self._sources[file] = (stamp, data, digest)
        return data, digest

    def may_bind(self, file: str, name: str, functions: bool) -> bool:
        """Can module level of `file` bind `name` to what is asked? A search of its text, so that most
        questions (every imported callee asks one) parse nothing: only a `def name`, an assignment to
        `name` or an import naming it (a re-export) binds it; an API alias or helper must also spell an
        API's name there (or the name it is imported `as`)."""
        data, _ = self.source(file)
        if data is None or (not functions and not self.spells_api(file)):
            return False
        return _may_bind(data, name, None if functions else self.config.apis.spelling_bytes)

    def spells_api(self, file: str) -> bool:
        """Only a module that spells a mask API's name can bind an alias or helper of one."""
        data, _ = self.source(file)
        return data is not None and any(name in data for name in self.config.apis.spelling_bytes)

    def exports(self, file: str) -> Exports | None:
        data, digest = self.source(file)
        if data is None:
            return None
        known = self._exports.get(file)
        if known is not None and known[0] == digest:
            return known[1]
        found, exports = self.cache.get_module(file, digest) if self.cache is not None else (False, None)
        if not found:
            from .engine import module_exports

            exports = module_exports(data, file, self.config)
            self.computed[file] = (digest, exports)
        self._exports[file] = (digest, exports)
        return exports


class FileNames:
    """`ProjectNames` (analysis/imported_names.py) for one importing file, recording what it asked."""

    __slots__ = ("importer", "index", "used")

    def __init__(self, index: ProjectIndex, importer: str | None, used: dict[str, Answer]) -> None:
        self.index = index
        self.importer = importer
        self.used = used

    def lookup(self, qualified: str, functions: bool) -> Imported | None:
        found = self.index.lookup(self.importer, qualified, functions)
        self.used[("f:" if functions else "c:") + qualified] = found
        return found


def _may_bind(source: bytes, name: str, api_words: tuple[bytes, ...] | None) -> bool:
    """`source` may bind `name` at module level: a def, an assignment or an import names it. With
    `api_words`, only an API alias or pass-through helper is wanted: an import (a re-export), an
    assignment that spells an API after its `=`, or a def that calls an API with one of its own
    parameters as a whole argument. A search of the text that may answer yes wrongly, never no wrongly
    for code laid out as usual (a string at column 0 inside a def may end the def early)."""
    import re

    word = re.escape(name.encode("utf-8"))
    if re.search(rb"\bimport\b[^\n(]*\b" + word + rb"\b|\bimport[ \t]*\([^)]*\b" + word + rb"\b", source):
        return True  # an import naming it (on one line, or in parentheses): a re-export
    statements = re.finditer(
        rb"^([ \t]*)(?:(?:async[ \t]+)?def[ \t]+" + word + rb"[ \t]*\(|" + word + rb"[ \t]*(?::[^=\n]*)?=(?!=))",
        source,
        re.M,
    )
    if api_words is None:
        return any(True for _ in statements)
    aliases = re.findall(rb"\b(?:" + b"|".join(map(re.escape, api_words)) + rb")[ \t]+as[ \t]+(\w+)", source)
    spelled = re.compile(rb"\b(?:" + b"|".join(map(re.escape, (*api_words, *aliases))) + rb")\b")
    for match in statements:
        statement = _statement(source, match.start(), len(match.group(1)))
        after = statement[match.end() - match.start() :]
        if not match.group(0).endswith(b"("):  # an assignment: an alias spells an API after `=`
            if spelled.search(after):
                return True
            continue
        parameters = _parameters(_inside(after))
        for call in re.finditer(spelled.pattern + rb"[ \t]*\(", after):
            arguments = _inside(after[call.end() :])
            if any(
                re.search(rb"(?:^|[,=])[ \t\n]*" + re.escape(p) + rb"[ \t\n]*(?:,|$)", arguments) for p in parameters
            ):
                return True
    return False


def _inside(text: bytes) -> bytes:
    """`text` up to the bracket that closes an opened one (the arguments of a call whose `(` preceded)."""
    depth = 0
    for index, char in enumerate(text):
        if char in b"([{":
            depth += 1
        elif char in b")]}":
            if depth == 0:
                return text[:index]
            depth -= 1
    return text


def _parameters(signature: bytes) -> list[bytes]:
    """The parameter names of a def's parameter list (split at its top-level commas)."""
    names: list[bytes] = []
    depth = 0
    start = 0
    for index, char in enumerate(signature + b","):
        if char in b"([{":
            depth += 1
        elif char in b")]}":
            depth -= 1
        elif char == ord(",") and depth == 0:
            part = signature[start:index].strip().lstrip(b"*").split(b":")[0].split(b"=")[0].strip()
            if part and part != b"/":
                names.append(part)
            start = index + 1
    return names


def _statement(source: bytes, start: int, indent: int) -> bytes:
    """The statement that starts at `start`: up to the next line indented no deeper (a def's body), or
    to the end of its brackets (an assignment). Text-level: a string at column 0 may end it early."""
    lines = source[start:].split(b"\n")
    taken = [lines[0]]
    depth = _brackets(lines[0])
    for line in lines[1:]:
        stripped = line.lstrip(b" \t")
        if depth <= 0 and stripped and not stripped.startswith(b"#") and len(line) - len(stripped) <= indent:
            break
        taken.append(line)
        depth += _brackets(line)
    return b"\n".join(taken)


def _brackets(line: bytes) -> int:
    return sum(line.count(c) for c in (b"(", b"[", b"{")) - sum(line.count(c) for c in (b")", b"]", b"}"))


def _digest(data: bytes) -> str:
    import hashlib  # on use: a one-file run that asks about no module never needs it

    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _fingerprint(found: Answer) -> str:
    """A short, stable text for an answer: equal answers, equal texts (what the cache compares)."""
    if found is None:
        return ""
    import hashlib
    import json

    text = json.dumps([found.path, found.name, found.entry], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
