"""The floor for any checker built on CPython's parser, for comparing esper-lint's cold run against:
start Python, walk DIR, read each `.py` file, apply esper-lint's prefilter, and `ast.parse` the files that
pass it in as many forked workers as esper-lint uses, with no analysis at all.

    python benchmarks/parse_floor.py DIR

benchmarks/targets.py runs it beside `esper-lint` and ruff on the flex-heavy corpus: what esper-lint
spends above this floor is the analysis itself.
"""

from __future__ import annotations

import ast
import gc
import os
import sys
from multiprocessing import get_context
from pathlib import Path

from esper_lint.config import Config
from esper_lint.engine import might_match
from esper_lint.runner import worker_count


def _parse(path: str) -> None:
    gc.disable()  # as esper-lint parses: no collector passes over the new tree
    ast.parse(Path(path).read_bytes())


def main() -> None:
    root = Path(sys.argv[1]).resolve()
    config = Config(root=root)
    paths: list[str] = []
    size = 0
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                source = Path(path).read_bytes()
                if might_match(source, config):
                    paths.append(path)
                    size += len(source)
    workers = worker_count(None, len(paths), size)
    if workers == 1:
        for path in paths:
            _parse(path)
        return
    with get_context("fork").Pool(workers) as pool:
        list(pool.imap(_parse, paths, chunksize=1))


if __name__ == "__main__":
    main()
