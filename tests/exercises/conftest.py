"""The grading front end: ``pytest tests/exercises [--impl PATH] [--hidden DIR] [--results F]``.

Without options it grades the solution notebooks (which must score 100%). The options, fixtures
and result records are described in :mod:`toydiff.grading.plugin`.
"""

from __future__ import annotations

import pytest

import toydiff.grading.plugin as grading_plugin


def pytest_addoption(parser: pytest.Parser) -> None:
    grading_plugin.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    # registered as a plugin (not imported here) so that its fixtures reach hidden tests too
    if not config.pluginmanager.is_registered(grading_plugin):
        config.pluginmanager.register(grading_plugin, "toydiff-grading")
    hidden = config.getoption("hidden", None)
    if hidden and hidden not in config.args:
        config.args.append(hidden)
