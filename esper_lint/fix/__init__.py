"""Safe fixes (the hoisting codemod). See esper_lint/fix/safety.py for when a fix is offered."""
