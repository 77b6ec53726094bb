"""What `esper-lint verify` was asked to do, parsed and checked before any subprocess starts."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INSTALL_HINT = "pip install 'esper-lint[harness]'"
_EXAMPLE = '{"dim": 64}'
DEFAULT_SEQ_LENS: tuple[int, ...] = (16, 32, 48, 64, 80, 96, 112, 128, 144, 160)
# Defaults sized so that a CPU run answers the ticket's questions (retention, functions created per miss,
# equivalence, memory growth) in under a minute on a 2-core machine: 120 forwards leave the 100 after
# warm-up that a growth rate needs with the 10 default lengths.
DEFAULT_ITERATIONS = 120
DEFAULT_LATENCY_ROUNDS = 16  # timed pairs (one forward per variant each), the unit of the bootstrap
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float16", "bfloat16")


class HarnessError(Exception):
    """A problem that stops the run (bad file, factory not found, torch missing): one line, exit code 2."""


@dataclass(frozen=True)
class VerifyOptions:
    path: Path
    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int | None, ...] = (2, None, 64)  # None marks `T`, the sequence length
    seq_lens: tuple[int, ...] = DEFAULT_SEQ_LENS
    iterations: int = DEFAULT_ITERATIONS
    device: str = "auto"
    compile: bool = False
    compile_backend: str = "inductor"
    latency_rounds: int = DEFAULT_LATENCY_ROUNDS
    seed: int = 0
    dtype: str = "float32"
    atol: float = 0.0  # outputs must be bit-identical unless a tolerance is given

    def __post_init__(self) -> None:
        """The CLI's option types enforce these; the Python API (`verify(...)`) relies on this check."""
        if self.device not in DEVICES:
            raise HarnessError(f"device {self.device!r} is not one of {', '.join(DEVICES)}")
        if self.dtype not in DTYPES:
            raise HarnessError(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        for name in ("iterations", "latency_rounds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HarnessError(f"{name} must be a positive integer, not {value!r}")
        if not self.seq_lens or not (self.atol >= 0):
            raise HarnessError("seq_lens must name at least one length and atol must be 0 or more")

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


def no_cuda_reason(torch_version: str, cuda_build: str | None) -> str:
    """Why `--device cuda` cannot run: a CPU-only torch build, or no device visible."""
    if cuda_build is None:
        return f"torch {torch_version} was built without CUDA support"
    return f"torch {torch_version} (CUDA {cuda_build}) sees no CUDA device"


def type_phrase(value: Any) -> str:
    """`None`, `an int`, `a list`: what a value is, in a sentence."""
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"
