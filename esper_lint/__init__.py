"""esper-lint: static analysis (and safe fixes) for FlexAttention mask functions in PyTorch code."""

__version__ = "0.2.0"
