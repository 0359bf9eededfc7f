"""The files training steps pass each other: the dataset, the recipe and pickled models."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pandas as pd

from fraudrisk.training.recipes import Recipe


def read_dataset(path: Path) -> pd.DataFrame:
    """The frame written by :func:`build_dataset`."""
    return pd.read_parquet(path)


def read_recipe(path: Path) -> Recipe:
    """A recipe written as JSON."""
    return Recipe.from_json(path.read_text())


def load_pickle(path: Path) -> Any:
    """Unpickle a model written by a step (only files this pipeline wrote)."""
    with path.open("rb") as handle:
        return pickle.load(handle)


def dump_pickle(value: Any, path: Path) -> Path:
    """Pickle a step's output to ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(value, handle)
    return path
