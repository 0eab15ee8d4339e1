"""Shared fixtures. Each part of ibkrtool contributes a plugin module under tests/plugins/."""

pytest_plugins = ["tests.plugins.pg", "tests.plugins.r", "tests.plugins.sim"]
