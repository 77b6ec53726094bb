"""A stand-in for torch, so behaviour programs run in milliseconds: only what they import."""
