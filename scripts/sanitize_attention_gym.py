"""attention-gym's mask and score-mod examples under `esper-lint sanitize` (docs/sanitize.md lists what it finds).

    esper-lint sanitize --report found.json -- python scripts/sanitize_attention_gym.py PATH/TO/attention-gym

Builds each of its mask factories' masks with the real `create_block_mask` and runs `flex_attention` with
them (and with its score mods) on CPU at small sizes, the way its own examples use them, then runs each
example module's `main(device="cpu")` (its visualisations, written to a temporary folder). Nothing of
attention-gym is copied here: its checkout is put on sys.path.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
import traceback
import warnings

import torch
from torch.nn.attention.flex_attention import and_masks, create_block_mask, flex_attention, or_masks

warnings.filterwarnings("ignore")
B, H, D = 2, 4, 16


def attend(mask_mod=None, score_mod=None, length=256, batch=B, heads=H, b_arg=None, h_arg=None):  # type: ignore[no-untyped-def]
    q, k, v = (torch.randn(batch, heads, length, D) for _ in range(3))
    block_mask = create_block_mask(mask_mod, b_arg, h_arg, length, length, device="cpu") if mask_mod else None
    return flex_attention(q, k, v, score_mod=score_mod, block_mask=block_mask)


def masks() -> None:
    from attn_gym.masks import (
        causal_mask,
        generate_dilated_sliding_window,
        generate_doc_mask_mod,
        generate_morton_natten,
        generate_natten,
        generate_prefix_lm_mask,
        generate_sliding_window,
        generate_sta_mask_mod_2d,
        generate_sta_mask_mod_3d,
        generate_tiled_natten,
    )
    from attn_gym.masks.batchify import batchify_mask_mod
    from attn_gym.masks.document_mask import length_to_offsets
    from attn_gym.masks.flamingo import generate_vision_cross_attention_mask_mod
    from attn_gym.masks.svg import generate_spatial_head_mask_mod, generate_temporal_head_mask_mod

    attend(causal_mask)
    attend(generate_sliding_window(32))
    attend(and_masks(causal_mask, generate_sliding_window(32)))
    attend(or_masks(generate_prefix_lm_mask(64), causal_mask))
    attend(generate_dilated_sliding_window(32, 2))
    offsets = length_to_offsets([64, 100, 92], "cpu")
    attend(generate_doc_mask_mod(causal_mask, offsets))
    attend(generate_natten(16, 16, 5, 5))
    attend(generate_tiled_natten(16, 16, 5, 5, 4, 4))
    attend(generate_morton_natten(16, 16, 5, 5))
    attend(generate_sta_mask_mod_2d((16, 16), (8, 8), (4, 4)))
    attend(generate_sta_mask_mod_3d((4, 8, 8), (2, 4, 4), (2, 4, 4)))
    attend(batchify_mask_mod(causal_mask, 64))
    intervals = torch.tensor([[0, 64], [64, 256]])
    attend(generate_vision_cross_attention_mask_mod(intervals, 128))  # 2 images x 128 key tokens
    attend(generate_spatial_head_mask_mod(prompt_length=16, num_frames=4, token_per_frame=60, width=1), length=256)
    attend(generate_temporal_head_mask_mod(prompt_length=16, num_frames=4, token_per_frame=60, width=1), length=256)


def mods() -> None:
    from attn_gym.masks import causal_mask
    from attn_gym.mods import generate_alibi_bias, generate_tanh_softcap

    attend(causal_mask, score_mod=generate_alibi_bias(H))
    attend(causal_mask, score_mod=generate_tanh_softcap(30, approx=False))


def examples() -> None:
    """Each example module's own `main(device="cpu")`."""
    import matplotlib

    matplotlib.use("Agg")
    names = ["causal", "sliding_window", "prefix_lm", "document_mask", "dilated_sliding_window", "natten", "sta"]
    names += ["flamingo", "svg", "batchify"]
    modules = [f"attn_gym.masks.{n}" for n in names] + ["attn_gym.mods.alibi", "attn_gym.mods.softcapping"]
    with tempfile.TemporaryDirectory() as out, contextlib.chdir(out):
        for module in modules:
            try:
                importlib.import_module(module).main(device="cpu")
                print(f"ran {module}.main")
            except Exception:
                print(f"{module}.main failed:\n{traceback.format_exc(limit=3)}")


def main() -> None:
    sys.path.insert(0, os.path.abspath(sys.argv[1]))
    torch.manual_seed(0)
    masks()
    mods()
    if "--no-examples" not in sys.argv:
        examples()


if __name__ == "__main__":
    main()
