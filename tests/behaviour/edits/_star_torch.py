"""For `from _star_torch import *` in where_star_import_later.py: it binds `torch` to something else."""


class _NotTorch:
    def where(self, *args: object) -> str:
        return "not torch's where"


torch = _NotTorch()
