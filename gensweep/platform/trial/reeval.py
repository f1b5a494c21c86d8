"""Re-score a stored trial checkpoint with any backbone and N, and append the result to the store.

The checkpoint says which trial it belongs to, its dataset and its evaluation settings
(``trial.json``, see :mod:`gensweep.platform.trial.checkpoints`). The generator is rebuilt by its
family, scored by the same metrics chain on the same fixed latents (``eval.latent_seed``, the
trial's batch size and metrics), against the reference statistics of the same real images
(the trial's reference N) under the chosen backbone, taken from the registry or computed once.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import torch

from gensweep.platform.data import StorageOptions
from gensweep.platform.metrics.backbones import BACKBONES, get_backbone
from gensweep.platform.metrics.evaluator import evaluate
from gensweep.platform.metrics.refstats import ProtocolMismatch, RefStatsKey
from gensweep.platform.results import ResultsStore, metrics_row
from gensweep.platform.results.schema import REEVAL, make_row_key
from gensweep.platform.trial.checkpoints import load_checkpoint
from gensweep.platform.trial.evaluation import (
    class_references,
    make_protocol,
    reference_key,
    reference_stats,
)
from gensweep.trainables.families import FAMILIES

# What must stay the same between the trial's reference set and the re-evaluation's: only the
# backbone protocol may change.
SAME_REFERENCE = ("dataset", "split", "resolution", "n", "resize", "seed")


class UnknownBackbone(ValueError):
    """A backbone name that is not registered; the message lists the registered ones."""


def reevaluate(
    checkpoint: str,
    *,
    backbone: Optional[str] = None,
    num_samples: Optional[int] = None,
    results_root: Optional[str] = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Score ``checkpoint`` and append one ``metrics`` row (marked ``reeval``); returns the row.

    ``backbone`` / ``num_samples`` default to the trial's own; ``results_root`` to the sweep's.
    The row's key holds the backbone and N, so repeating a re-evaluation replaces its row and
    never the training-time row of the same step."""
    if backbone is not None and backbone not in BACKBONES:
        raise UnknownBackbone(f"backbone: unknown backbone {backbone!r}; allowed: {', '.join(BACKBONES)}")
    dev = torch.device(device)
    state, info = load_checkpoint(checkpoint, dev)
    settings = info["eval"]
    name = backbone or settings["backbone"]
    net = get_backbone(name).to(dev)
    n = int(num_samples or settings["num_samples"])
    root = results_root or info["results_root"]
    storage = StorageOptions(**info["storage"])

    original = RefStatsKey(**info["reference"])
    key = reference_key(info["dataset"], storage, net, original.n, original.seed)
    changed = original.mismatches(**{f: getattr(key, f) for f in SAME_REFERENCE})
    if changed:
        raise ProtocolMismatch(f"the dataset at {info['dataset']} is no longer the one trial {info['trial_id']} was"
                               " scored against: " + "; ".join(changed))
    ref = reference_stats(key, info["dataset"], storage, net, batch_size=settings["batch_size"], results_root=root)
    protocol = make_protocol(backbone=name, num_samples=n, batch_size=settings["batch_size"],
                             latent_seed=settings["latent_seed"], metrics=settings["metrics"])
    if protocol.class_metrics():  # intra_fid: the reference set's per-class entries (found, or made once)
        ref.classes = {int(c.key.label): c for c in class_references(ref, info["dataset"], storage, root)}

    t0 = time.perf_counter()
    scores: dict[str, Any] = {}
    for j, (tag, sample) in enumerate(FAMILIES.get(info["family"]).samplers(state, dev)):
        result = evaluate(sample, net, ref, protocol)
        if tag:
            scores.update({f"{k}/{tag}": v for k, v in result.items()})
        if j == 0:
            scores.update(result)
    experiment, trial_id, step = info["experiment"], info["trial_id"], int(state["step"])
    row = metrics_row(experiment, trial_id, step, scores, reported_at=time.time(), **{REEVAL: True},
                      checkpoint=checkpoint, eval_time_s=time.perf_counter() - t0,
                      row_key=make_row_key(experiment, trial_id, step, REEVAL, name, n))
    ResultsStore.open(root).write("metrics", [row])
    return row
