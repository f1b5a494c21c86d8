"""Optuna's NSGA-II sampler, made picklable.

Tune pickles the searcher with the Tuner (and saves it for ``gensweep resume``), but Optuna's
genetic-algorithm samplers hold a ``threading.Lock`` for their generation cache, which cannot be
pickled. This subclass drops the lock when pickled and makes a new one when unpickled; the cache
it guards is rebuilt from the study (Optuna keeps each trial's generation in the study).
"""
from __future__ import annotations

import threading
from typing import Any

import optuna


class PicklableNSGAII(optuna.samplers.NSGAIISampler):
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_thread_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._thread_lock = threading.Lock()
