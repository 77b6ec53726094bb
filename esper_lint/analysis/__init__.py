"""The analysis: a parsed module in, `ModuleFacts` out (model.py), computed once and read by every rule and
by the fixer. `module_facts.py` drives it; the module docstring there lists the parts in order."""
