"""Fixtures for release tests: a repository and blob store under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetup.releases.blobs import LocalBlobStore
from fleetup.releases.tuf_repo import TufRepository


@pytest.fixture
def repository(tmp_path: Path) -> TufRepository:
    return TufRepository(tmp_path / "var")


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "var" / "blobs")
