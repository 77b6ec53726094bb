"""Analysis backends: turn a parsed module into `ModuleFacts` for the rules."""
