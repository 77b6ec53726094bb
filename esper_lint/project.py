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

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from .config import Config

if TYPE_CHECKING:  # imported on use: a run whose files import nothing of the project never loads them
    import re

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
        self._holds: dict[tuple[str, str], bool] = {}  # (base, top name) -> a folder or module of it exists
        self._found: dict[tuple[str | None, str], str | None] = {}  # (importer's folder, module) -> file
        self._answers: dict[tuple[str | None, str, bool], Imported | None] = {}  # (_where, name, functions)
        self._bases_of: dict[str, list[str]] = {}  # importer's folder -> where absolute imports start
        self._files: dict[str, _File] = {}
        self._noted: dict[str, bool] = {}  # checked files: spells an API's name (the run read them already)
        self._fresh: set[str] = set()  # files whose stat was taken since the last `refresh`
        # The last module read, with its bytes: an importer asks about several of its names in a row.
        self._last_read: tuple[str, _File] | None = None
        self._exports: dict[str, tuple[object, Exports | None]] = {}  # path -> (version, exports)
        # Exports computed (not read from the cache) since `take_computed`: the cache keeps them.
        self.computed: dict[str, tuple[str, Exports | None]] = {}
        self._used: dict[str, dict[str, Answer | tuple[bool, bool]]] = {}  # importing path -> question -> answer
        self._may_bind: dict[tuple[str, str, bool], tuple[object, bool]] = {}
        self._api_words = config.apis.spelling_bytes
        self._cwd: str | None = None  # the working folder, read on first use (relative paths are from it)

    # ------------------------------------------------------------------ what a run asks
    def names_for(self, path: str) -> FileNames:
        """The answers for one importing file; its questions are recorded for `used_by`."""
        used = self._used.setdefault(path, {})
        return FileNames(self, None if path in _NO_FILE else self._absolute(path), used)

    def used_by(self, path: str) -> dict[str, str]:
        """The questions `path`'s analysis asked, with a fingerprint of each answer (and forget them)."""
        return {question: _fingerprint(answer) for question, answer in self._used.pop(path, {}).items()}

    def forget(self, path: str) -> None:
        self._used.pop(path, None)

    def still_hold(self, path: str, used: dict[str, str]) -> bool:
        """Does every question `path`'s cached result rested on get the same answer now?"""
        names = FileNames(self, None if path in _NO_FILE else self._absolute(path), {})
        for question, fingerprint in used.items():
            kind, _, name = question.partition(":")
            if kind == "m":
                answer: Answer | tuple[bool, bool] = names.module(name)
            elif kind in ("f", "c"):
                answer = names.lookup(name, functions=kind == "f")
            else:
                return False
            if _fingerprint(answer) != fingerprint:
                return False
        return True

    def take_computed(self) -> dict[str, tuple[str, Exports | None]]:
        computed, self.computed = self.computed, {}
        return computed

    def note(self, path: str, spells_api: bool) -> None:
        """The run read `path` and searched it for the APIs' names (`engine.might_match`): no need to read
        it again to know whether it can bind an alias or helper."""
        self._noted[self._absolute(path)] = spells_api

    def _absolute(self, path: str) -> str:
        """`os.path.abspath(path)`, without its `normpath` for a path that is already normal (as discovery
        makes them): a run notes every file it walks, and the normalisation was most of that cost."""
        normal = path[:1] not in ("", ".") and path[-1] != "/" and "//" not in path and "/." not in path
        if normal and os.sep == "/":
            if path.startswith("/"):
                return path
            if self._cwd is None:
                self._cwd = os.getcwd()
            return os.path.join(self._cwd, path)
        return os.path.abspath(path)

    def refresh(self) -> None:
        """Forget which files exist (a long-running server calls this before each check); what a module
        offers is kept by its content and re-read when the file changes."""
        self._cwd = None
        self._is_file.clear()
        self._holds.clear()
        self._found.clear()
        self._answers.clear()
        self._bases_of.clear()
        self._noted.clear()
        self._fresh.clear()

    # ------------------------------------------------------------------ answers
    def lookup(self, importer: str | None, qualified: str, functions: bool) -> Imported | None:
        """What `qualified` (as `importer` spells it) is; the same for every importer in one folder, so
        asked once per run (files that import the same names ask nothing new)."""
        key = (self._where(importer, qualified), qualified, functions)
        if key in self._answers:
            return self._answers[key]
        found = self._answers[key] = self._lookup(importer, qualified, functions, 0)
        return found

    def _lookup(self, importer: str | None, qualified: str, functions: bool, depth: int) -> Imported | None:
        if depth > _MAX_REEXPORTS:
            return None
        level = len(qualified) - len(qualified.lstrip("."))
        parts = qualified[level:].split(".")
        attribute = parts.pop()
        if not attribute:
            return None
        file = self.find_module(importer, "." * level + ".".join(parts))
        if file is None or not self.may_bind(file, attribute, functions):
            return None
        entry = (self.exports(file) or {}).get(attribute)
        if entry is None:
            return None
        kind = entry.get("kind")
        if kind == "reexport":
            target = entry.get("target")
            return self._lookup(file, target, functions, depth + 1) if isinstance(target, str) else None
        if (kind in _CALLABLE_KINDS) == functions:  # not what was asked for
            return None
        from .analysis.imported_names import Imported

        return Imported(attribute, entry, self.display(file))

    def module(self, importer: str | None, module: str) -> tuple[bool, bool] | None:
        file = self.find_module(importer, module)
        return None if file is None else (file.endswith("__init__.py"), self.spells_api(file))

    def display(self, file: str) -> str:
        """The file as messages name it: relative to the project root when under it."""
        try:
            return Path(file).relative_to(self.root).as_posix()
        except ValueError:
            return Path(file).as_posix()

    # ------------------------------------------------------------------ modules
    def find_module(self, importer: str | None, module: str) -> str | None:
        """The `.py` file of `module` (dotted; leading dots: relative to `importer`'s folder)."""
        key = (self._where(importer, module), module)
        if key not in self._found:
            self._found[key] = self._find_module(os.path.dirname(importer) if importer is not None else None, module)
        return self._found[key]

    def _where(self, importer: str | None, name: str) -> str | None:
        """What a name's meaning depends on: the importer's folder for a relative name; for an absolute
        one, only where absolute imports start (the same for every folder of one top package)."""
        folder = os.path.dirname(importer) if importer is not None else None
        return folder if name.startswith(".") else self._bases(folder)[0]

    def _find_module(self, folder: str | None, module: str) -> str | None:
        level = len(module) - len(module.lstrip("."))
        parts = [p for p in module[level:].split(".") if p]
        if level:
            if folder is None:
                return None
            for _ in range(level - 1):
                folder = os.path.dirname(folder)
            return self._file_in(folder, parts)
        if not parts:
            return None
        for base in self._bases(folder):
            found = self._file_in(base, parts)
            if found is not None:
                return found
        return None

    def _bases(self, folder: str | None) -> list[str]:
        """Where an absolute import starts: above the importer's top package (its folder for a script),
        then the root, then `root/src`."""
        if folder is None:
            return self._bases_src
        bases = self._bases_of.get(folder)
        if bases is None:
            top = folder
            while self._exists(os.path.join(top, "__init__.py")) and os.path.dirname(top) != top:
                top = os.path.dirname(top)
            bases = self._bases_of[folder] = [top, *(b for b in self._bases_src if b != top)]
        return bases

    def _file_in(self, base: str, parts: list[str]) -> str | None:
        if len(parts) > 1 and not self._may_hold(base, parts[0]):
            return None
        path = os.path.join(base, *parts)
        package = os.path.join(path, "__init__.py")
        for candidate in (path + ".py", package) if parts else (package,):
            if self._exists(candidate):
                return candidate
        return None

    def _may_hold(self, base: str, top: str) -> bool:
        """Can `base` hold a module under `top` (a folder or a `.py` file of that name)? Asked once per top
        name: most dotted imports name packages that are not the project's (`torch.…`), and their
        modules then cost no `stat` each."""
        key = (base, top)
        found = self._holds.get(key)
        if found is None:
            folder = os.path.join(base, top)
            found = self._holds[key] = (
                os.path.isdir(folder)
                or self._exists(folder + ".py")
                or any(path.startswith(folder + os.sep) for path in self.overlay)
            )
        return found

    def _exists(self, path: str) -> bool:
        found = self._is_file.get(path)
        if found is None:
            found = self._is_file[path] = path in self.overlay or os.path.isfile(path)
        return found

    def _file(self, file: str, need_bytes: bool) -> _File:
        """What the index knows of `file` as it is now (its `version`: the stat, or an open buffer's
        hash): read again only when that changed, or for its bytes, which are kept for the last file read
        only (memory stays flat)."""
        if file in self.overlay:
            buffer = self.overlay[file]
            return _File(("buffer", hash(buffer)), buffer, self._spells(buffer))
        known = self._files.get(file)
        if known is not None and file in self._fresh:  # seen since the last `refresh`: not stat'ed twice
            if not need_bytes:
                return known
            last = self._last_read
            if last is not None and last[0] == file and last[1].version == known.version:
                return last[1]
        try:
            info = os.stat(file)
            version: tuple[object, ...] | None = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            version = None
        self._fresh.add(file)
        if known is not None and known.version == version and version is not None and not need_bytes:
            return known
        try:
            with open(file, "rb") as fh:
                data: bytes | None = fh.read()
        except OSError:
            data = None
        noted = self._noted.get(file)  # the run searched a file it checks already: not again
        spells = noted if noted is not None and data is not None else data is not None and self._spells(data)
        state = _File(version, data, spells)
        self._files[file] = _File(version, None, state.spells)
        self._last_read = (file, state)
        return state

    def _spells(self, data: bytes) -> bool:
        return any(name in data for name in self._api_words)

    def spells_api(self, file: str) -> bool:
        """Only a module that spells a mask API's name can bind an alias or helper of one."""
        noted = self._noted.get(file)
        return noted if noted is not None else self._file(file, need_bytes=False).spells

    def may_bind(self, file: str, name: str, functions: bool) -> bool:
        """Can module level of `file` bind `name` to what is asked? A search of its text, so that most
        questions (every imported callee asks one) parse nothing: only a `def name`, an assignment to
        `name` or an import naming it (a re-export) binds it; an API alias or helper must also spell an
        API's name there (or the name it is imported `as`)."""
        if not functions and not self.spells_api(file):
            return False
        version = self._file(file, need_bytes=False).version
        known = self._may_bind.get((file, name, functions))
        if known is not None and known[0] == version:
            return known[1]
        state = self._file(file, need_bytes=True)
        found = state.data is not None and _may_bind(state.data, name, None if functions else self._api_words)
        self._may_bind[(file, name, functions)] = (state.version, found)
        return found

    def exports(self, file: str) -> Exports | None:
        """What `file` offers its importers: computed once per content (kept in the cache by its digest)."""
        version = self._file(file, need_bytes=False).version
        known = self._exports.get(file)
        if known is not None and known[0] == version:
            return known[1]
        data = self._file(file, need_bytes=True).data
        if data is None:
            return None
        digest = _digest(data) if self.cache is not None else ""
        found, exports = self.cache.get_module(file, digest) if self.cache is not None else (False, None)
        if not found:
            from .engine import module_exports

            exports = module_exports(data, file, self.config)
            if self.cache is not None:
                self.computed[file] = (digest, exports)
        self._exports[file] = (version, exports)
        return exports


class _File:
    __slots__ = ("data", "spells", "version")

    def __init__(self, version: tuple[object, ...] | None, data: bytes | None, spells: bool) -> None:
        self.version = version
        self.data = data
        self.spells = spells


class FileNames:
    """`ProjectNames` (analysis/imported_names.py) for one importing file, recording what it asked."""

    __slots__ = ("importer", "index", "used")

    def __init__(self, index: ProjectIndex, importer: str | None, used: dict[str, Answer | tuple[bool, bool]]) -> None:
        self.index = index
        self.importer = importer
        self.used = used

    def lookup(self, qualified: str, functions: bool) -> Imported | None:
        found = self.index.lookup(self.importer, qualified, functions)
        self.used[("f:" if functions else "c:") + qualified] = found
        return found

    def module(self, module: str) -> tuple[bool, bool] | None:
        found = self.index.module(self.importer, module)
        self.used["m:" + module] = found
        return found


def _may_bind(source: bytes, name: str, api_words: tuple[bytes, ...] | None) -> bool:
    """`source` may bind `name` at module level: a def, an assignment or an import names it. With
    `api_words`, only an API alias or pass-through helper is wanted: an import (a re-export), an
    assignment that spells an API after its `=`, or a def that calls an API with one of its own
    parameters as a whole argument. A search of the text that may answer yes wrongly, never no wrongly
    for code laid out as usual (a string at column 0 inside a def may end the def early)."""
    import re

    token = name.encode("utf-8")
    spelled: re.Pattern[bytes] | None = None
    start = source.find(token)
    while start != -1:
        end = start + len(token)
        if (start and _is_word(source[start - 1])) or (end < len(source) and _is_word(source[end])):
            start = source.find(token, end)
            continue
        line_start = source.rfind(b"\n", 0, start) + 1
        before = source[line_start:start]
        line_end = source.find(b"\n", end)
        after = source[end : line_end if line_end != -1 else len(source)]
        opened = source.rfind(b"import", 0, start)
        in_parentheses = (
            opened != -1
            and source.find(b")", opened, start) == -1  # most often found at once: no copy of the text between
            and re.fullmatch(rb"import[ \t]*\((?:[\s\w,]|#[^\n]*)*", source[opened:start])
        )
        if b"import" in before or in_parentheses:
            return True  # an import naming it (on one line, or in parentheses): a re-export
        definition = re.fullmatch(rb"[ \t]*(?:async[ \t]+)?def[ \t]+", before) and after.lstrip().startswith(b"(")
        assignment = not before.strip() and re.match(rb"[ \t]*(?::[^=\n]*)?=(?!=)", after)
        if definition or assignment:
            if api_words is None:
                return True
            if spelled is None:
                spelled = _api_pattern(source, api_words)
            statement = _statement(source, line_start, len(before) - len(before.lstrip(b" \t")))
            rest = statement[end - line_start :]
            if assignment and spelled.search(rest):  # an alias spells an API after `=`
                return True
            if definition and _passes_a_parameter(rest, spelled):
                return True
        start = source.find(token, end)
    return False


def _is_word(byte: int) -> bool:
    return byte == 95 or 48 <= byte <= 57 or 65 <= byte <= 90 or 97 <= byte <= 122 or byte >= 128


@functools.lru_cache(maxsize=8)  # one module's text is asked about several names
def _api_pattern(source: bytes, api_words: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """The API's names, the names this text imports them `as`, and the names it assigns from any of these
    (`compiled = torch.compile(cbm)`, then `same = compiled`), to a fixpoint, as the relevance filter.
    Found from where each word occurs (a few places), not by reading every assignment of the module."""
    import re

    words: list[bytes] = list(api_words)
    pending = list(api_words)
    alias = re.compile(rb"[ \t]+as[ \t]+(\w+)")
    while pending:
        word = pending.pop()
        start = source.find(word)
        while start != -1:
            end = start + len(word)
            if not (start and _is_word(source[start - 1])) and not (end < len(source) and _is_word(source[end])):
                imported = alias.match(source, end) if word in api_words else None
                name = imported.group(1) if imported is not None else _assigned_at(source, start, len(word))
                if name is not None and name not in words:
                    words.append(name)
                    pending.append(name)
            start = source.find(word, end)
    return re.compile(rb"\b(?:" + b"|".join(map(re.escape, words)) + rb")\b")


_ASSIGNMENT_LINES = 4  # how far above an occurrence the assignment it continues may start


def _assigned_at(source: bytes, position: int, length: int) -> bytes | None:
    """The name an assignment binds to the word at `position` itself, or to a wrapper of it (`x = cbm`,
    `x = torch.compile(\n    cbm, ...)`); not to what calling it returns (`x = cbm(mask, ...)`)."""
    import re

    line_start = source.rfind(b"\n", 0, position) + 1
    for _ in range(_ASSIGNMENT_LINES):
        match = re.compile(rb"[ \t]*(\w+)[ \t]*(?::[^=\n]*)?=(?!=)").match(source, line_start)
        if match is not None and match.end() <= position:
            between = source[match.end() : position]
            if not between.strip():
                called = source[position + length : position + length + 64].lstrip(b" \t").startswith(b"(")
                return None if called else match.group(1)
            return match.group(1) if re.fullmatch(rb"\s*[\w.]+\s*\(\s*", between) else None
        if line_start == 0:
            return None
        line_start = source.rfind(b"\n", 0, line_start - 1) + 1
    return None


def _passes_a_parameter(definition: bytes, spelled: re.Pattern[bytes]) -> bool:
    """`definition` (from the `(` of `def name(`) calls an API with a parameter as a whole argument."""
    import re

    parameters = set(_parameters(_inside(definition[definition.find(b"(") + 1 :])))
    for call in re.finditer(spelled.pattern + rb"[ \t]*\(", definition):
        for argument in _split(_inside(definition[call.end() :])):
            value = argument.split(b"=", 1)[-1].strip()  # `mask_mod=mask` passes `mask` too
            if value in parameters:
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
    """The parameter names of a def's parameter list."""
    names = (part.strip().lstrip(b"*").split(b":")[0].split(b"=")[0].strip() for part in _split(signature))
    return [name for name in names if name and name != b"/"]


def _split(items: bytes) -> list[bytes]:
    """A parameter or argument list split at its top-level commas."""
    parts: list[bytes] = []
    depth = 0
    start = 0
    for index, char in enumerate(items):
        if char in b"([{":
            depth += 1
        elif char in b")]}":
            depth -= 1
        elif char == 44 and depth == 0:  # ","
            parts.append(items[start:index])
            start = index + 1
    parts.append(items[start:])
    return parts


def _statement(source: bytes, start: int, indent: int) -> bytes:
    """The statement that starts at `start`: up to the next line indented no deeper (a def's body), or
    to the end of its brackets (an assignment). Text-level: a string at column 0 may end it early."""
    end = source.find(b"\n", start)
    if end == -1:
        return source[start:]
    depth = _brackets(source[start:end])
    # Only a line indented no deeper, neither blank nor a comment, can end it: found by a pattern, and the
    # brackets of the lines before it counted at once (a long def body is not read line by line).
    ending = _line_ending_statement(indent)
    found = ending.search(source, end)
    while found is not None:
        depth += _brackets(source[end : found.start()])
        if depth <= 0:
            return source[start : found.start()]
        end = found.start()
        found = ending.search(source, end + 1)
    return source[start:]


@functools.lru_cache(maxsize=16)
def _line_ending_statement(indent: int) -> re.Pattern[bytes]:
    """The newline before a line indented at most `indent`, neither blank nor a comment."""
    import re

    return re.compile(rb"\n(?=[ \t]{0,%d}[^ \t\n#])" % indent)


def _brackets(line: bytes) -> int:
    opened = line.count(b"(") + line.count(b"[") + line.count(b"{")
    return opened - line.count(b")") - line.count(b"]") - line.count(b"}")


def _digest(data: bytes) -> str:
    import hashlib  # on use: a one-file run that asks about no module never needs it

    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _fingerprint(found: Answer | tuple[bool, bool]) -> str:
    """A short, stable text for an answer: equal answers, equal texts (what the cache compares)."""
    if found is None:
        return ""
    if isinstance(found, tuple):
        return "".join("1" if flag else "0" for flag in found)
    import hashlib
    import json

    text = json.dumps([found.path, found.name, found.entry], sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()
