"""A module for `from star_helpers import *` in the behaviour programs: it binds names a hoist might use."""


def causal(b: int, h: int, q: int, kv: int) -> bool:
    return False


WINDOW = 100
