"""`verify(...)`: the harness from Python (a test suite, a CI script), with the CLI's options and isolation.

    from esper_lint.harness import verify

    def test_fix_keeps_attention_identical():
        report = verify("src/model/attention.py", factory="make_block", kwargs={"dim": 64},
                        input_shape="2,T,64", device="cpu")
        assert report.equivalent, report.table()

The module runs in two worker subprocesses exactly as under `esper-lint verify`; this process never
imports torch. Problems that stop the run (file, factory, device, torch missing) raise `HarnessError`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import driver, report
from .options import (
    DEFAULT_ITERATIONS,
    DEFAULT_LATENCY_ROUNDS,
    DEFAULT_SEQ_LENS,
    HarnessError,
    VerifyOptions,
    parse_input_shape,
    parse_kwargs,
    parse_seq_lens,
)


@dataclass(frozen=True)
class VerifyReport:
    """The report of one run: the fields of `esper-lint verify --json`, as attributes."""

    equivalent: bool  # outputs, BlockMasks (and compiled outputs) identical within atol
    max_abs_diff: float | None
    mask_mod_retained: bool  # the BlockMask keeps the very function it was given
    masks_consistent: bool  # every mask computed what it was built from (late binding, B/H=None, compiled)
    latency_ratio: float | None  # median fixed/original over timed pairs
    latency_ratio_ci: list[float] | None  # 95% bootstrap interval of that median
    latency_significant: bool  # the interval excludes 1.0
    device: str
    device_name: str
    torch_version: str
    python_version: str
    platform: str
    file: str
    module: str
    options: dict[str, Any]
    fix: dict[str, Any]
    comparison: dict[str, Any]
    latency: dict[str, Any]
    problems: list[str]
    phase_seconds: dict[str, float]
    variants: dict[str, Any]

    @property
    def ok(self) -> bool:
        """What the CLI's exit code 0 means: equivalent, and every mask behaves as built."""
        return self.equivalent and self.masks_consistent

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """The table `esper-lint verify` prints."""
        return report.render_text(self.to_dict())

    def write_json(self, path: str | os.PathLike[str]) -> None:
        report.write_json(self.to_dict(), Path(path))

    def write_plot(self, path: str | os.PathLike[str]) -> None:
        report.check_plot_available()
        report.write_plot(self.to_dict(), Path(path))

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:  # what pytest shows in a failed `assert report.equivalent`: short, verdict first
        return (
            f"VerifyReport(equivalent={self.equivalent}, masks_consistent={self.masks_consistent}, "
            f"mask_mod_retained={self.mask_mod_retained}, module={self.module!r}, problems={len(self.problems)})"
        )


def verify(
    path: str | os.PathLike[str],
    *,
    factory: str,
    kwargs: dict[str, Any] | str | None = None,
    input_shape: str | Sequence[int | str | None] = "2,T,64",
    seq_lens: str | Sequence[int] = DEFAULT_SEQ_LENS,
    iterations: int = DEFAULT_ITERATIONS,
    latency_rounds: int = DEFAULT_LATENCY_ROUNDS,
    device: str = "auto",
    dtype: str = "float32",
    atol: float = 0.0,
    seed: int = 0,
    compile: bool = False,
    compile_backend: str = "inductor",
    json: str | os.PathLike[str] | None = None,
    plot: str | os.PathLike[str] | None = None,
) -> VerifyReport:
    """Run `path`'s module as written and after `--fix`; the keyword arguments are the CLI's options.

    `kwargs` and `input_shape`/`seq_lens` take the CLI's text (`'{"dim": 64}'`, `"2,T,64"`, `"16,32"`) or
    Python values (`{"dim": 64}`, `(2, "T", 64)`, `(16, 32)`). `json`/`plot` also write those files.
    """
    options = VerifyOptions(
        path=Path(path),
        factory=factory,
        kwargs=parse_kwargs(kwargs) if isinstance(kwargs, str) else dict(kwargs or {}),
        input_shape=parse_input_shape(_as_text(input_shape)),
        seq_lens=parse_seq_lens(_as_text(seq_lens)),
        iterations=iterations,
        latency_rounds=latency_rounds,
        device=device,
        dtype=dtype,
        atol=atol,
        seed=seed,
        compile=compile,
        compile_backend=compile_backend,
    )
    if plot is not None:
        report.check_plot_available()
    result = VerifyReport(**driver.run(options))
    if json is not None:
        result.write_json(json)
    if plot is not None:
        result.write_plot(plot)
    return result


def _as_text(value: str | Sequence[Any]) -> str:
    """One parser for both spellings: a sequence is joined into the CLI's comma-separated text."""
    if isinstance(value, str):
        return value
    try:
        return ",".join("T" if part is None else str(part) for part in value)
    except TypeError:
        raise HarnessError(f"expected text such as '2,T,64' or a sequence, not {value!r}") from None
