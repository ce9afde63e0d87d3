"""A server's cycle collector runs its young generation less often, and a run inside another
program gives the collector back as it found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from fleetup.core import runtime


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_a_server_collects_its_young_generation_every_young_allocations() -> None:
    gc.set_threshold(700, 10, 10)
    runtime.serving()
    assert gc.get_threshold() == (runtime.YOUNG, 10, 10)


def test_a_run_inside_another_program_restores_the_collector_even_when_it_fails() -> None:
    gc.set_threshold(700, 11, 12)
    with pytest.raises(RuntimeError), runtime.served():
        assert gc.get_threshold() == (runtime.YOUNG, 11, 12)
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == (700, 11, 12)
