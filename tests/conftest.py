"""Shared fixtures; their logic lives in tests/support/."""

pytest_plugins = ["tests.support.fixtures"]
