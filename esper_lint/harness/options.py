"""What `esper-lint verify` was asked to do, parsed and checked before any subprocess starts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTALL_HINT = "pip install 'esper-lint[harness]'"
_EXAMPLE = '{"dim": 64}'
DEFAULT_SEQ_LENS: tuple[int, ...] = (16, 32, 48, 64, 80, 96, 112, 128, 144, 160)


class HarnessError(Exception):
    """A problem that stops the run (bad file, factory not found, torch missing): one line, exit code 2."""


@dataclass(frozen=True)
class VerifyOptions:
    path: Path
    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int | None, ...] = (2, None, 64)  # None marks `T`, the sequence length
    seq_lens: tuple[int, ...] = DEFAULT_SEQ_LENS
    iterations: int = 200
    device: str = "auto"
    compile: bool = False
    compile_backend: str = "inductor"
    latency_rounds: int = 5
    seed: int = 0
    dtype: str = "float32"
    atol: float = 0.0  # outputs must be bit-identical unless a tolerance is given

    def shape_for(self, seq_len: int) -> list[int]:
        return [seq_len if dim is None else dim for dim in self.input_shape]

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "factory": self.factory,
            "kwargs": self.kwargs,
            "input_shape": list(self.input_shape),
            "seq_lens": list(self.seq_lens),
            "iterations": self.iterations,
            "device": self.device,
            "compile": self.compile,
            "compile_backend": self.compile_backend,
            "latency_rounds": self.latency_rounds,
            "seed": self.seed,
            "dtype": self.dtype,
            "atol": self.atol,
        }


def parse_kwargs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarnessError(f"--kwargs is not valid JSON ({exc.msg}); pass an object such as '{_EXAMPLE}'") from None
    if not isinstance(value, dict):
        raise HarnessError(f"--kwargs must be a JSON object of keyword arguments, such as '{_EXAMPLE}'")
    return value


def parse_input_shape(text: str) -> tuple[int | None, ...]:
    """`2,T,64` -> (2, None, 64): exactly one `T`, the other dimensions positive integers."""
    dims: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part.upper() == "T":
            dims.append(None)
        elif part.isdigit() and int(part) > 0:
            dims.append(int(part))
        else:
            raise HarnessError(f"--input-shape {text!r}: {part!r} is not a positive integer or T (e.g. 2,T,64)")
    if dims.count(None) != 1:
        raise HarnessError(f"--input-shape {text!r} must contain T exactly once, where each sequence length goes")
    return tuple(dims)


def parse_seq_lens(text: str) -> tuple[int, ...]:
    lens: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) <= 0:
            raise HarnessError(f"--seq-lens {text!r}: {part!r} is not a positive integer (e.g. 16,32,64)")
        lens.append(int(part))
    return tuple(lens)
