"""What every body-fix program prints: one line per probe, the value or the exception it raised."""

import torch


def describe(value):
    if hasattr(value, "to_dense"):  # a BlockMask
        value = value.to_dense()
    if isinstance(value, torch.Tensor):
        return f"tensor shape={tuple(value.shape)} dtype={value.dtype} values={value.flatten().tolist()}"
    return repr(value)


def probe(label, compute):
    try:
        print(f"{label} -> {describe(compute())}")
    except Exception as exc:
        print(f"{label} -> raises {type(exc).__name__}")
