"""Shared fixtures: every test run uses its own empty artifact store."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("SAFETYGAP_PROGRESS", "0")


@pytest.fixture(scope="session", autouse=True)
def isolated_store(tmp_path_factory):
    """Point the artifact store at a fresh directory for the whole session."""
    root = tmp_path_factory.mktemp("store")
    old = os.environ.get("SAFETYGAP_CACHE")
    os.environ["SAFETYGAP_CACHE"] = str(root)
    yield root
    if old is None:
        os.environ.pop("SAFETYGAP_CACHE", None)
    else:
        os.environ["SAFETYGAP_CACHE"] = old
