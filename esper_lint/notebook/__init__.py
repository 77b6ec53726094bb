"""Jupyter notebooks (`.ipynb`): a source adapter. The code cells are checked and fixed as the one Python module
they make, through the engine and the fixer as a Python file is; findings are reported per cell
(`nb.ipynb:cell 3:2:5`, as ruff does) and `--fix` rewrites only the `source` of the cells it changes.

- cells.py: the notebook's JSON read into code cells, the module they join into, and its line map.
- magics.py: IPython magics and shell escapes masked as Python placeholders, and put back.
- adapter.py: checking, fixing (in rounds, one analysis each), `--add-noqa` and `--diff` of a notebook.
- splice.py: changed cells written into the notebook's JSON text, every other byte kept.
"""

from .adapter import add_noqa, fix_notebook, fix_notebook_file, lint_notebook, unified_diff
from .cells import CodeCell, Notebook, NotebookError, load

__all__ = [
    "CodeCell",
    "Notebook",
    "NotebookError",
    "add_noqa",
    "fix_notebook",
    "fix_notebook_file",
    "lint_notebook",
    "load",
    "unified_diff",
]
