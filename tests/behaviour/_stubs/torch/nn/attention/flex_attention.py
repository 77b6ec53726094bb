"""Pure-Python stand-ins for the FlexAttention mask API, keeping what the behaviour programs observe.

Like the real functions they call the mask function on every (q, kv) position and keep the function
object (`BlockMask.mask_mod`), so a program can print what it computed and which object it holds.
Masks receive plain ints here; programs in tests/behaviour/ write their masks with int arithmetic.
"""

from __future__ import annotations

from typing import Any


class BlockMask:
    def __init__(self, mask_mod: Any, dense: tuple[tuple[bool, ...], ...]) -> None:
        self.mask_mod = mask_mod
        self.dense = dense

    def __repr__(self) -> str:
        rows = "/".join("".join("1" if x else "0" for x in row) for row in self.dense)
        return f"BlockMask({rows})"


def _dense(mask_mod: Any, q_len: int, kv_len: int) -> tuple[tuple[bool, ...], ...]:
    return tuple(tuple(bool(mask_mod(0, 0, q, kv)) for kv in range(kv_len)) for q in range(q_len))


def create_block_mask(
    mask_mod: Any, B: Any, H: Any, Q_LEN: int, KV_LEN: int, device: str = "cpu", **_: Any
) -> BlockMask:
    return BlockMask(mask_mod, _dense(mask_mod, Q_LEN, KV_LEN))


def create_mask(mod_fn: Any, B: Any, H: Any, Q_LEN: int, KV_LEN: int, device: str = "cpu") -> Any:
    return _dense(mod_fn, Q_LEN, KV_LEN)


def and_masks(*mask_mods: Any) -> Any:
    def combined(b: Any, h: Any, q: Any, kv: Any) -> bool:
        return all(m(b, h, q, kv) for m in mask_mods)

    return combined


def or_masks(*mask_mods: Any) -> Any:
    def combined(b: Any, h: Any, q: Any, kv: Any) -> bool:
        return any(m(b, h, q, kv) for m in mask_mods)

    return combined


def noop_mask(b: Any, h: Any, q: Any, kv: Any) -> bool:
    return True
