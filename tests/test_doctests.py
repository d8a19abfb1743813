"""The docstring examples of the package run as tests, so they cannot go stale.

pytest collects only tests/ (pyproject's testpaths), so `--doctest-modules`
would never reach src/prodcat: each module's examples run here instead.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import prodcat


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(prodcat.__path__, prefix="prodcat."):
        # A module is imported only when its source holds an example: importing
        # all of them would start Streamlit and Ray for nothing.
        spec = importlib.util.find_spec(info.name)
        if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
            continue
        with open(spec.origin, encoding="utf-8") as source:
            if ">>>" in source.read():
                names.append(info.name)
    return ["prodcat", *names]


@pytest.mark.parametrize("module_name", _modules_with_examples())
def test_docstring_examples_hold(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {module_name} no longer hold (see the output above)"
