"""Safe fixes behind `esper-lint --fix` and `--diff` (what counts as safe: docs/fix.md).

- `file_fixer.py`: one file's bytes to fixed bytes (`fix_source`), written atomically (`fix_file`);
- `edits.py`: applies the text edits findings carry, verified; `hoist.py` (+ `naming.py`): moves nested
  mask functions to module level with LibCST; `hoist_targets.py`: which findings it fixes;
- `diff.py`: `--diff`; `writer.py`: atomic, mode-keeping writes that refuse files changed meanwhile.
"""
