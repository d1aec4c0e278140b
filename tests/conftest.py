"""Shared fixtures: one local Ray for the session (bound to 127.0.0.1), a private data cache."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    # Rendered synthetic data goes to a per-session cache, never the user's ~/.cache.
    os.environ.setdefault("RSEARCH_CACHE", str(tmp_path_factory.mktemp("rsearch-cache")))
    yield


@pytest.fixture(scope="session")
def ray_local():
    """A real local Ray (ray.init on this machine), started once and shut down at the end."""
    import ray

    from rsearch.ray_session import init_ray

    init_ray(num_cpus=2)
    yield ray
    ray.shutdown()
