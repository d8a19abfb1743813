"""The scripts of benchmarks/ are no package: their folder goes on sys.path, as
when they run (they import each other by name), before these tests import them."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
