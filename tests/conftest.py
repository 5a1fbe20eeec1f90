"""Shared test set-up: one thread per test worker (pytest-xdist runs two), a hypothesis profile, a tuning cache
that never touches the user's."""

import os

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("XCORR_MEASURE", "0")  # each test has a fresh tuning cache: measuring would re-time every shape

import pytest
import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(1)

settings.register_profile(
    "xcorr",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "xcorr"))


@pytest.fixture(autouse=True)
def _private_tuning_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XCORR_CACHE_DIR", str(tmp_path_factory.mktemp("xcorr-cache")))
