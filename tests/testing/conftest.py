"""Load the pynats plugin when its entry point is not installed (PYTHONPATH=src runs),
and pytester, which the plugin's own tests use to run a user's project.

Installed (``pip install -e .``), pytest loads ``pynats.testing.plugin`` through the
``pytest11`` entry point and only pytester is added here.
"""

from __future__ import annotations

import pytest

import pynats.testing.plugin as plugin


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.is_registered(plugin):
        config.pluginmanager.register(plugin, "pynats")
    if not config.pluginmanager.has_plugin("pytester"):
        config.pluginmanager.import_plugin("pytester")
