"""A tiny prepared dataset, its reference statistics and in-process trials for evaluation tests (no Ray)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gensweep.platform.trial.checkpoints import checkpoint_info, write_checkpoint_dir
from gensweep.platform.data import prepare
from gensweep.platform.trial.evaluation import WorkerEvaluator, prepare_reference
from gensweep.platform.trial.handoff import EvalRuntime
from gensweep.platform.metrics import mnist_split
from gensweep.platform.spec import parse_spec
from gensweep.trainables.context import LocalContext
from gensweep.trainables.families import FAMILIES

EVAL = {"num_samples": 100, "ref_samples": 200, "batch_size": 32, "metrics": ["fid", "kid"], "latent_seed": 7,
        "ladder": [{"until_step": 4, "num_samples": 40}, {"until_step": 8, "num_samples": 70}]}
GAN = {"steps": 12, "eval_every": 4, "batch_size": 32, "width": 8, "z_dim": 8, "num_classes": 0, "grid_size": 4}
DIFFUSION = {"steps": 2, "eval_every": 2, "batch_size": 32, "width": 8, "channel_mult": [1, 2], "num_res_blocks": 1,
             "attn_res": 0, "num_classes": 0, "grid_size": 2, "eval_samplers": ["ddim:2", "euler:2"],
             "eval_batch_size": 32}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> str:
    """300 real digits at 16x16, prepared like any sweep dataset."""
    src = tmp_path_factory.mktemp("src") / "digits.npy"
    digits, _ = mnist_split("train", pad=False)
    np.save(src, digits[np.random.default_rng(0).permutation(len(digits))[:300]])
    uri = str(tmp_path_factory.mktemp("data") / "digits-16")
    prepare(str(src), uri, resolution=16, resize="resize")
    return uri


def tiny_spec(root: Path, dataset: str, family: str = "gan", **eval_overrides: Any):
    trainable = GAN if family == "gan" else DIFFUSION
    return parse_spec({"name": "tiny", "family": family, "trainable": trainable,
                       "data": {"source": dataset, "uri": dataset, "resolution": 16},
                       "eval": {**EVAL, **eval_overrides}, "results": {"root": str(root)}})


def batches_of(dataset: str, batch_size: int):
    from gensweep.platform.data import read_arrays

    images, labels = read_arrays(dataset)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.from_numpy(labels)

    def batches(epoch: int):
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(x) - batch_size + 1, batch_size):
            yield {"image": x[perm[i:i + batch_size]], "label": y[perm[i:i + batch_size]]}

    return batches


def run_trial(spec, dataset: str, root: Path) -> tuple[LocalContext, EvalRuntime]:
    """One trial in-process, scored by the platform's evaluator; returns its context and eval runtime."""
    runtime = prepare_reference(spec, dataset, str(root))
    evaluator = WorkerEvaluator.from_config(runtime, torch.device("cpu"))
    cfg = spec.resolve_trial({})
    ctx = LocalContext(cfg, batches_of(dataset, cfg["batch_size"]), evaluator=evaluator.evaluate)
    FAMILIES.get(spec.family).train(ctx)
    return ctx, runtime


def save_checkpoint(directory: Path, ctx: LocalContext, spec, dataset: str, root: Path, runtime: EvalRuntime,
                    trial_id: str = "t0") -> str:
    """The last state of an in-process trial, written as the platform writes a trial checkpoint."""
    directory.mkdir(parents=True)
    info = checkpoint_info(experiment="tiny-run", trial_id=trial_id, family=spec.family, dataset=dataset,
                           results_root=str(root), storage={}, eval_runtime=runtime)
    write_checkpoint_dir(str(directory), ctx.states[-1], info)
    return str(directory)
