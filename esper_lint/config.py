"""Configuration: `[tool.esper-lint]` in the nearest pyproject.toml, overridden by the command line.

Configuration is data: it is parsed with tomllib and validated, never executed.
"""

from __future__ import annotations

import fnmatch
import math
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.apis import ApiTable, MaskApi
from .core.records import record_eq, record_repr
from .rules import DEFAULT_SELECT, RULES_BY_CODE

if TYPE_CHECKING:
    from .analysis.imported_names import ProjectSource

DEFAULT_EXCLUDE: tuple[str, ...] = (
    ".bzr",
    ".direnv",
    ".eggs",
    ".esper_lint_cache",
    ".git",
    ".hg",
    ".ipynb_checkpoints",  # Jupyter's autosaved copies of each notebook (as ruff)
    ".mypy_cache",
    ".nox",
    ".pytest_cache",
    ".ruff_cache",
    ".svn",
    ".tox",
    ".venv",
    "__pycache__",
    "__pypackages__",
    "_build",
    "buck-out",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "venv",
    "*.egg-info",
)

KNOWN_KEYS = frozenset(
    {
        "select",
        "ignore",
        "extend-select",
        "exclude",
        "extend-exclude",
        "per-file-ignores",
        "mask-apis",
        "respect-gitignore",
        "force-exclude",
        "jobs",
        "cache-dir",
        "timeout",
    }
)
MASK_API_KEYS = frozenset({"name", "mask-arg", "mask-keyword", "builds-block-mask"})


class ConfigError(Exception):
    """A configuration or usage problem: reported in one line, exit code 2."""


class Config:
    """The effective configuration: immutable (`replace` makes a changed copy), equal and hashable by the
    settings that can change findings. A plain class, not a dataclass: building dataclasses is a
    noticeable part of a one-file run's start-up."""

    __slots__ = (
        "_api_table",
        "_project",
        "cache_dir",
        "exclude",
        "extend_exclude",
        "force_exclude",
        "jobs",
        "mask_apis",
        "origins",
        "per_file_ignores",
        "respect_gitignore",
        "root",
        "select",
        "source",
        "timeout",
        "unsafe_fixes",
        "warnings",
    )
    # What equality and hashing compare: everything but the messages and origins (and the cached table).
    _compared = (
        "root",
        "source",
        "select",
        "exclude",
        "extend_exclude",
        "per_file_ignores",
        "mask_apis",
        "respect_gitignore",
        "force_exclude",
        "jobs",
        "cache_dir",
        "timeout",
        "unsafe_fixes",
    )
    _shown = (*_compared, "warnings", "origins")
    __eq__ = record_eq
    __repr__ = record_repr

    root: Path
    source: Path | None
    select: frozenset[str]
    exclude: tuple[str, ...]
    extend_exclude: tuple[str, ...]
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...]
    mask_apis: tuple[MaskApi, ...]
    respect_gitignore: bool
    force_exclude: bool
    jobs: int | None
    cache_dir: Path | None
    timeout: float
    unsafe_fixes: bool
    warnings: tuple[str, ...]
    origins: tuple[tuple[str, str], ...]
    _api_table: ApiTable | None
    _project: ProjectSource | None

    def __init__(
        self,
        root: Path,
        source: Path | None = None,
        select: frozenset[str] = DEFAULT_SELECT,
        exclude: tuple[str, ...] = DEFAULT_EXCLUDE,
        extend_exclude: tuple[str, ...] = (),
        per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = (),
        mask_apis: tuple[MaskApi, ...] = (),
        respect_gitignore: bool = True,
        force_exclude: bool = False,
        jobs: int | None = None,
        cache_dir: Path | None = None,
        timeout: float = 60.0,
        unsafe_fixes: bool = False,
        warnings: tuple[str, ...] = (),
        origins: tuple[tuple[str, str], ...] = (),
    ) -> None:
        values = (
            ("root", root),  # directory that relative patterns are resolved against
            ("source", source),  # the pyproject.toml / config file read, if any
            ("select", select),
            ("exclude", exclude),
            ("extend_exclude", extend_exclude),
            ("per_file_ignores", per_file_ignores),
            ("mask_apis", mask_apis),
            ("respect_gitignore", respect_gitignore),
            ("force_exclude", force_exclude),
            ("jobs", jobs),
            ("cache_dir", cache_dir),
            ("timeout", timeout),  # seconds per file before it is reported as an error
            ("unsafe_fixes", unsafe_fixes),  # --fix / --diff also apply fixes marked unsafe (--unsafe-fixes)
            ("warnings", warnings),  # shown on stderr; the run goes on
            # Where each setting (by its TOML key) came from, for --show-settings; absent keys are defaults.
            ("origins", origins),
            ("_api_table", None),
            ("_project", None),
        )
        for name, value in values:
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Config is immutable: use config.replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Config is immutable")

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, f) for f in self._compared))

    def replace(self, **changes: Any) -> Config:
        """A copy with `changes` (`dataclasses.replace`); the API table is built again for it."""
        values = {name: getattr(self, name) for name in (*self._compared, "warnings", "origins")}
        unknown = set(changes) - set(values)
        if unknown:
            raise TypeError(f"Config has no setting {sorted(unknown)[0]!r}")
        values.update(changes)
        config = Config(**values)
        object.__setattr__(config, "_project", self._project)
        return config

    @property
    def project(self) -> ProjectSource | None:
        """The run's index of the project's modules (esper_lint/project.py): not a setting, so neither
        compared nor fingerprinted; the engine asks it about names a file imports from the project."""
        return self._project

    def with_project(self, project: ProjectSource | None) -> Config:
        """A copy whose files are checked with `project`'s facts about the modules they import."""
        config = self.replace()
        object.__setattr__(config, "_project", project)
        return config

    @property
    def apis(self) -> ApiTable:
        table = self._api_table
        if table is None:
            table = ApiTable(self.mask_apis)
            object.__setattr__(self, "_api_table", table)
        return table

    def codes_for(self, path: str) -> frozenset[str]:
        """Selected codes minus the per-file ignores matching `path`."""
        codes = self.select
        if not self.per_file_ignores:
            return codes
        rel = _relative(path, self.root)
        for pattern, ignored in self.per_file_ignores:
            if _glob_match(rel, pattern):
                codes = codes - ignored
        return codes

    def fingerprint(self) -> str:
        """Stable hash of everything that can change findings (used by the result cache)."""
        data = {
            "select": sorted(self.select),
            "per_file_ignores": [(p, sorted(c)) for p, c in self.per_file_ignores],
            "mask_apis": [
                (a.qualified_name, a.mask_position, a.mask_keyword, a.builds_block_mask) for a in self.mask_apis
            ],
            "root": str(self.root),
            "unsafe_fixes": self.unsafe_fixes,  # unsafe fixes count as fixable then
        }
        import hashlib  # here, not at the top: a run without the cache never needs it (start-up time)
        import json

        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def _relative(path: str, root: Path) -> str:
    try:
        return Path(os.path.abspath(path)).relative_to(root.resolve()).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _glob_match(rel: str, pattern: str) -> bool:
    """Like ruff: a pattern matches the path relative to the config root, or the file/folder name."""
    pattern = pattern.rstrip("/")
    return fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], pattern)


def find_pyproject(start: Path, warnings: list[str] | None = None) -> tuple[Path, Any] | None:
    """The nearest pyproject.toml at or above `start` that has a [tool.esper-lint] table, with that table
    (read once).

    A table spelled another way (`[tool.esper_lint]`) is not read; it adds a warning to `warnings`."""
    current = start if start.is_dir() else start.parent
    current = current.resolve()
    for directory in (current, *current.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            tool = _tool_table(_read_toml(candidate), candidate)
            if warnings is not None:
                warnings.extend(_misspelled_tables(tool, candidate))
            if "esper-lint" in tool:
                return candidate, tool["esper-lint"]
    return None


def _misspelled_tables(tool: dict[str, Any], where: Path) -> list[str]:
    return [
        f"{where}: [tool.{key}] is not read; the table is spelled [tool.esper-lint]"
        for key in tool
        if key != "esper-lint" and key.lower().replace("_", "").replace("-", "") == "esperlint"
    ]


def _read_toml(path: Path) -> dict[str, Any]:
    # Imported here, not at the top: a run with no pyproject.toml on its way up never needs it.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]
    try:
        with open(path, "rb") as fh:
            data: dict[str, Any] = tomllib.load(fh)
            return data
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc}); nothing was checked: fix the file or pass --config") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 ({exc.reason}); nothing was checked: save it as UTF-8") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(f"{path}: TOML nested too deeply to read; nothing was checked: simplify the file") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{path}: cannot read configuration ({reason}); nothing was checked") from None


def load_config(config_file: Path | None, start: Path) -> Config:
    """Read `config_file` (or discover the nearest pyproject.toml above `start`)."""
    if config_file is not None:
        if not config_file.exists():
            raise ConfigError(f"{config_file}: configuration file does not exist")
        data = _read_toml(config_file)
        tool = _tool_table(data, config_file)
        warnings = _misspelled_tables(tool, config_file)
        # Either a pyproject.toml with [tool.esper-lint], or a file whose top level is the table.
        table = tool.get("esper-lint", data if config_file.name != "pyproject.toml" else {})
        config = _from_table(table, config_file.resolve().parent, config_file)
    else:
        warnings = []
        found = find_pyproject(start, warnings)
        if found is None:
            config = Config(root=Path.cwd().resolve())
        else:
            where, table = found
            config = _from_table(table, where.resolve().parent, where)
    return config.replace(warnings=tuple(warnings)) if warnings else config


def _tool_table(data: dict[str, Any], where: Path) -> dict[str, Any]:
    tool = data.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError(f"{where}: `tool` must be a table ([tool.esper-lint]); nothing was checked: fix the file")
    return tool


def _codes(value: Any, key: str, where: Path) -> frozenset[str]:
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: `{key}` must be a list of rule codes")
    return parse_codes(value, f"{where}: `{key}`")


def parse_codes(values: Iterable[str], context: str) -> frozenset[str]:
    """Rule codes and prefixes (`ESP`, `ESP00`, `ALL`) to the set of codes they name."""
    codes: set[str] = set()
    unknown = []
    for raw in values:
        value = raw.strip().upper()
        if not value:
            continue
        if value == "ALL":
            codes.update(RULES_BY_CODE)
            continue
        matched = {c for c in RULES_BY_CODE if c.startswith(value)}
        if not matched:
            unknown.append(raw.strip())
        codes |= matched
    if unknown:
        known = ", ".join(sorted(RULES_BY_CODE))
        raise ConfigError(f"{context}: unknown rule code(s) {', '.join(unknown)} (known: {known})")
    return frozenset(codes)


def _strings(value: Any, key: str, where: Path) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: `{key}` must be a list of strings")
    return tuple(value)


def _from_table(table: Any, root: Path, where: Path) -> Config:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [tool.esper-lint] must be a table")
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) in [tool.esper-lint]: {', '.join(unknown)}; nothing was checked: "
            f"use only {', '.join(sorted(KNOWN_KEYS))}"
        )
    config = Config(root=root, source=where)
    select = _codes(table["select"], "select", where) if "select" in table else DEFAULT_SELECT
    if "extend-select" in table:
        select |= _codes(table["extend-select"], "extend-select", where)
    if "ignore" in table:
        select -= _codes(table["ignore"], "ignore", where)
    changes: dict[str, Any] = {"select": select}
    if "exclude" in table:
        changes["exclude"] = _strings(table["exclude"], "exclude", where)
    if "extend-exclude" in table:
        changes["extend_exclude"] = _strings(table["extend-exclude"], "extend-exclude", where)
    if "per-file-ignores" in table:
        pfi = table["per-file-ignores"]
        if not isinstance(pfi, dict):
            raise ConfigError(f"{where}: `per-file-ignores` must be a table of pattern = [codes]")
        changes["per_file_ignores"] = tuple(
            (pattern, _codes(codes, f"per-file-ignores.{pattern}", where)) for pattern, codes in pfi.items()
        )
    if "mask-apis" in table:
        changes["mask_apis"] = tuple(_mask_api(entry, where) for entry in _list_of_tables(table["mask-apis"], where))
    for key, attr in (("respect-gitignore", "respect_gitignore"), ("force-exclude", "force_exclude")):
        if key in table:
            if not isinstance(table[key], bool):
                raise ConfigError(f"{where}: `{key}` must be true or false")
            changes[attr] = table[key]
    if "jobs" in table:
        if not isinstance(table["jobs"], int) or isinstance(table["jobs"], bool) or table["jobs"] < 1:
            raise ConfigError(f"{where}: `jobs` must be a positive integer")
        changes["jobs"] = table["jobs"]
    if "timeout" in table:
        timeout = table["timeout"]
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout < math.inf:
            raise ConfigError(f"{where}: `timeout` must be a positive number of seconds")
        changes["timeout"] = float(table["timeout"])
    if "cache-dir" in table:
        if not isinstance(table["cache-dir"], str):
            raise ConfigError(f"{where}: `cache-dir` must be a string")
        try:
            changes["cache_dir"] = (root / table["cache-dir"]).resolve()
        except (OSError, ValueError) as exc:  # NUL in the path, a symlink loop, ...
            raise ConfigError(f"{where}: `cache-dir` is not a usable path ({exc})") from None
    changes["origins"] = tuple((key, str(where)) for key in table)
    return config.replace(**changes)


def _list_of_tables(value: Any, where: Path) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{where}: `mask-apis` must be an array of tables ([[tool.esper-lint.mask-apis]])")
    return value


def _mask_api(entry: dict[str, Any], where: Path) -> MaskApi:
    unknown = sorted(set(entry) - MASK_API_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) in mask-apis entry: {', '.join(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or "." not in name:
        raise ConfigError(f"{where}: each mask-apis entry needs `name`, a fully qualified name like 'pkg.mod.func'")
    position = entry.get("mask-arg", 0)
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise ConfigError(f"{where}: `mask-arg` of {name} must be a non-negative integer")
    keyword = entry.get("mask-keyword", "mask_mod")
    if not isinstance(keyword, str) or not keyword.isidentifier():
        raise ConfigError(f"{where}: `mask-keyword` of {name} must be an identifier")
    builds = entry.get("builds-block-mask", False)
    if not isinstance(builds, bool):
        raise ConfigError(f"{where}: `builds-block-mask` of {name} must be true or false")
    return MaskApi(name, position, keyword, builds)


def apply_cli(
    config: Config,
    select: Sequence[str] | None = None,
    extend_select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    extend_exclude: Sequence[str] | None = None,
    force_exclude: bool | None = None,
    jobs: int | None = None,
    unsafe_fixes: bool | None = None,
    exclude: Sequence[str] | None = None,
    per_file_ignores: Sequence[str] | None = None,
) -> Config:
    """Command-line options win over the file, like ruff's (`--exclude`, `--per-file-ignores` replace it)."""
    codes = config.select
    given: list[str] = []
    if select:
        if not _split(select):
            raise ConfigError("--select names no rule code; give codes (`--select ESP001,ESP004`) or leave it out")
        codes = parse_codes(_split(select), "--select")
        given.append("select")
    if extend_select:
        codes |= parse_codes(_split(extend_select), "--extend-select")
        given.append("extend-select")
    if ignore:
        codes -= parse_codes(_split(ignore), "--ignore")
        given.append("ignore")
    changes: dict[str, Any] = {"select": codes}
    if exclude:
        changes["exclude"] = tuple(_split(exclude))
        given.append("exclude")
    if extend_exclude:
        changes["extend_exclude"] = config.extend_exclude + tuple(_split(extend_exclude))
        given.append("extend-exclude")
    if per_file_ignores:
        changes["per_file_ignores"] = tuple(_per_file_ignore(value) for value in per_file_ignores)
        given.append("per-file-ignores")
    if force_exclude is not None:
        changes["force_exclude"] = force_exclude
        given.append("force-exclude")
    if jobs is not None:
        changes["jobs"] = jobs
        given.append("jobs")
    if unsafe_fixes is not None:
        changes["unsafe_fixes"] = unsafe_fixes
        given.append("unsafe-fixes")
    changes["origins"] = config.origins + tuple((key, f"command line (--{key})") for key in given)
    return config.replace(**changes)


def _per_file_ignore(value: str) -> tuple[str, frozenset[str]]:
    """`--per-file-ignores 'tests/*:ESP001,ESP004'` (ruff's spelling): a pattern, a colon, codes."""
    pattern, colon, codes = value.rpartition(":")
    if not colon or not pattern.strip() or not _split([codes]):
        raise ConfigError(f"--per-file-ignores {value!r}: expected PATTERN:CODES, e.g. 'tests/*:ESP001,ESP004'")
    return pattern.strip(), parse_codes(_split([codes]), f"--per-file-ignores {value!r}")


def _split(values: Sequence[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part.strip()]


def describe(config: Config) -> str:
    """`--show-settings`: each effective setting as TOML, with where it came from (file, command line, default)."""
    origins: dict[str, list[str]] = {}
    for key, where in config.origins:
        origins.setdefault(key, []).append(where)

    def origin(*keys: str) -> str:
        found = [f"{w} ({key})" if w.endswith(".toml") else w for key in keys for w in origins.get(key, [])]
        return "; ".join(dict.fromkeys(found)) or "default"

    settings: list[tuple[str, Any, str]] = [
        ("select", sorted(config.select), origin("select", "extend-select", "ignore")),
        ("exclude", list(config.exclude), origin("exclude")),
        ("extend-exclude", list(config.extend_exclude), origin("extend-exclude")),
        ("per-file-ignores", {p: sorted(c) for p, c in config.per_file_ignores}, origin("per-file-ignores")),
        ("mask-apis", [api.qualified_name for api in config.mask_apis], origin("mask-apis")),
        ("respect-gitignore", config.respect_gitignore, origin("respect-gitignore")),
        ("force-exclude", config.force_exclude, origin("force-exclude")),
        ("jobs", config.jobs if config.jobs is not None else "CPU count", origin("jobs")),
        ("cache-dir", str(config.cache_dir or config.root / ".esper_lint_cache"), origin("cache-dir")),
        ("timeout", config.timeout, origin("timeout")),
        ("unsafe-fixes", config.unsafe_fixes, origin("unsafe-fixes")),
    ]
    lines = [
        f"# configuration file: {config.source or 'none (defaults)'}",
        f"# root (relative patterns start here): {config.root}",
    ]
    import json

    lines += [f"{key} = {json.dumps(value)}  # {where}" for key, value, where in settings]
    return "\n".join(lines) + "\n"
