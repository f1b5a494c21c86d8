"""FID vs sampling steps for one trained diffusion model (measurement, not a test).

Trains the diffusion trainable on the 5000 bundled MNIST digits (in-process, LocalContext,
CPU), then scores its EMA model with several (sampler, steps) settings using the shipped
``mnist-lenet`` FID backbone against all 5000 real digits, every setting on the same seeds.

    PYTHONPATH=. python benchmarks/bench_diffusion_steps.py --steps 600 --n 500

Prints a markdown table (sampler, steps, network evaluations, FID, seconds).
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from gensweep.trainables.diffusion.config import DiffusionConfig
from gensweep.trainables.diffusion.samplers import nfe, parse_setting
from gensweep.trainables.diffusion.trainable import DiffusionState, sampler_fn, untrained_model
from tests.test_diffusion_learning import LEARN_CFG, FidScorer, mnist_images, train_on_mnist

DEFAULT_SETTINGS = ["ddim:10", "ddim:25", "ddim:50", "euler:25", "heun:10", "heun:18", "ddpm:50", "ddpm:100"]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600, help="training updates")
    ap.add_argument("--n", type=int, default=500, help="samples per FID")
    ap.add_argument("--settings", default=",".join(DEFAULT_SETTINGS))
    ap.add_argument("--config", default="{}", help="JSON overrides of the learning-test config")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1234, help="sampling seed (same for every setting)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    cfg = {**LEARN_CFG, "steps": args.steps, "eval_every": args.steps, **json.loads(args.config)}
    model_cfg = DiffusionConfig.model_validate(cfg)
    images, _ = mnist_images()
    scorer = FidScorer(images)
    # the in-training eval is skipped here: every setting is scored below on the same seed
    ctx, _, train_s = train_on_mnist(cfg, scorer, evaluate=False)
    st = DiffusionState(model_cfg, torch.device("cpu"))
    st.load_state_dict(ctx.states[-1])
    net = st.sample_net()
    print(f"trained {args.steps} steps in {train_s:.0f}s; config {json.dumps(cfg)}")

    rows = []
    base = untrained_model(model_cfg)
    for tag, model in [("untrained", base), ("trained", net)]:
        for setting in args.settings.split(",") if tag == "trained" else ["ddim:50"]:
            name, k = parse_setting(setting)
            t0 = time.perf_counter()
            fid = scorer(sampler_fn(model, model_cfg, torch.device("cpu"), name, k), args.n, args.seed)
            rows.append((tag, name, k, nfe(name, k), fid, time.perf_counter() - t0))
            print(rows[-1], flush=True)
    print(f"\nFID (mnist-lenet, N={args.n}, vs 5000 real digits)\n")
    print("| model | sampler | steps | NFE | FID | sampling s |")
    print("|---|---|---|---|---|---|")
    for tag, name, k, n_eval, fid, secs in rows:
        print(f"| {tag} | {name} | {k} | {n_eval} | {fid:.2f} | {secs:.0f} |")


if __name__ == "__main__":
    main()
