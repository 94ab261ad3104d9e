"""Run every benchmark scenario at its default size: ``python -m bench.run``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    for mod in sorted(m.name for m in pkgutil.iter_modules([str(here)])):
        if mod in {"harness", "run", "__init__"} or mod.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{mod}")
        if not hasattr(module, "main"):
            continue
        print(f"== {mod}", flush=True)
        if module.main([]) not in (0, None):
            failed.append(mod)
    if failed:
        print("scenarios outside their limits: " + ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
