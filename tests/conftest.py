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


@pytest.fixture
def learning_args() -> list[str]:
    """`rsearch train` arguments for a tiny model that learns on this CPU in a few epochs:
    depth 26, width 0.25, 32 px, 4,000 synthetic images of 10 classes, with the light
    augmentation a tiny model in a short regime wants (as search_spaces/quickstart.yaml)."""
    return ["--depth", "26", "--width", "0.25", "--resolution", "32", "--batch-size", "64",
            "--train-size", "4000", "--num-classes", "10", "--dropout", "0.1", "--base-lr", "0.4",
            "--randaugment-magnitude", "5", "--crop-min-scale", "0.35"]
