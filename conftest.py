"""Collect the .rrtest files of the repository (``rulesets/``) with the revrules pytest
plugin, unless the installed plugin (the ``pytest11`` entry point) already does."""

from __future__ import annotations

from pathlib import Path

import pytest

from revrules import pytest_plugin


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if parent.config.pluginmanager.is_registered(pytest_plugin):
        return None
    return pytest_plugin.pytest_collect_file(file_path, parent)
