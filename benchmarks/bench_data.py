"""Data-path benchmark: images/s delivered by Ray Data + ShardLoader vs. what a GAN step consumes.

Measures, for MNIST-32 (5,000 images) prepared to local Parquet and to S3 (a moto
server started here on 127.0.0.1 and stopped by PID at the end):

1. delivery: images/s a do-nothing consumer receives from ``ShardLoader`` in
   ``materialize`` and ``stream`` mode (first epoch and later epochs separately);
2. consumption: images/s of a small DCGAN-like training step (D and G forward/backward +
   Adam) on 64x1x32x32 batches;
3. training loop: loader wait as a fraction of step compute time when the two run
   together.

Usage: python benchmarks/bench_data.py [--epochs 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import torch
import torch.nn as nn

BATCH = 64


# ----------------------------------------------------------------------------- S3 server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    port = _free_port()
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            return proc, endpoint
        except OSError:
            time.sleep(0.2)
    stop_moto(proc)
    raise TimeoutError("moto_server did not start")


def stop_moto(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# ----------------------------------------------------------------------------- model step


class Generator(nn.Module):
    def __init__(self, z=64, w=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.ConvTranspose2d(z, w * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(w * 4), nn.ReLU(True),
            nn.ConvTranspose2d(w * 4, w * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 2), nn.ReLU(True),
            nn.ConvTranspose2d(w * 2, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
            nn.ConvTranspose2d(w, 1, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    def __init__(self, w=32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, w, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w, w * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 2), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 2, w * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 4), nn.LeakyReLU(0.2, True),
            nn.Conv2d(w * 4, 1, 4, 1, 0),
        )

    def forward(self, x):
        return self.net(x).flatten()


class GanStep:
    """One non-saturating GAN update (D then G) on a real batch."""

    def __init__(self):
        torch.manual_seed(0)
        self.g, self.d = Generator(), Discriminator()
        self.opt_g = torch.optim.Adam(self.g.parameters(), 2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.d.parameters(), 2e-4, betas=(0.5, 0.999))
        self.loss = nn.BCEWithLogitsLoss()

    def __call__(self, real: torch.Tensor) -> None:
        b = real.shape[0]
        ones, zeros = torch.ones(b), torch.zeros(b)
        fake = self.g(torch.randn(b, 64))
        self.opt_d.zero_grad(set_to_none=True)
        (self.loss(self.d(real), ones) + self.loss(self.d(fake.detach()), zeros)).backward()
        self.opt_d.step()
        self.opt_g.zero_grad(set_to_none=True)
        self.loss(self.d(fake), ones).backward()
        self.opt_g.step()


def time_step(step: GanStep, n: int = 30) -> float:
    x = torch.rand(BATCH, 1, 32, 32) * 2 - 1
    for _ in range(5):
        step(x)
    t0 = time.perf_counter()
    for _ in range(n):
        step(x)
    return (time.perf_counter() - t0) / n


# ----------------------------------------------------------------------------- measurements


def delivery(open_dataset, ShardLoader, uri: str, mode: str, epochs: int) -> dict:
    loader = ShardLoader(open_dataset(uri).iterator(), batch_size=BATCH, seed=0, mode=mode)
    per_epoch = []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        n = sum(b["image"].shape[0] for b in loader.epoch_batches(epoch))
        per_epoch.append((n, time.perf_counter() - t0))
    first = per_epoch[0][0] / per_epoch[0][1]
    later = sum(n for n, _ in per_epoch[1:]) / sum(t for _, t in per_epoch[1:]) if epochs > 1 else float("nan")
    return {"images_per_epoch": per_epoch[0][0], "epoch_s": [round(t, 3) for _, t in per_epoch],
            "first_epoch_img_s": round(first, 1), "later_epochs_img_s": round(later, 1)}


def training(open_dataset, ShardLoader, uri: str, mode: str, epochs: int, steps: int, step: GanStep) -> dict:
    """Up to ``steps`` GAN steps per epoch fed by the loader; wait vs. compute per epoch."""
    loader = ShardLoader(open_dataset(uri).iterator(), batch_size=BATCH, seed=0, mode=mode)
    rows = []
    for epoch in range(epochs):
        compute, done = 0.0, 0
        t_epoch = time.perf_counter()
        batches = loader.epoch_batches(epoch)
        for b in batches:
            t0 = time.perf_counter()
            step(b["image"])
            compute += time.perf_counter() - t0
            done += 1
            if done == steps:
                batches.close()  # stop this epoch early: the next one starts a fresh pass
                break
        rows.append({"epoch": epoch, "steps": done, "wall_s": round(time.perf_counter() - t_epoch, 3),
                     "compute_s": round(compute, 3), "wait_s": round(loader.epoch_wait_s, 3),
                     "wait_over_compute": round(loader.epoch_wait_s / compute, 3)})
    return {"epochs": rows}


def write_results(results: dict, path: str | None) -> None:
    """Print the results (with the load average at the end) and write them to ``path`` if given."""
    results["load_avg_end"] = os.getloadavg()
    print(json.dumps(results, indent=2))
    if path:
        with open(path, "w") as f:
            json.dump(results, f, indent=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train-epochs", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=40, help="GAN steps per training epoch (cap)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for the model step")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import boto3
    import ray

    from gensweep.platform.data import ShardLoader, open_dataset, prepare

    # `timeout`/kill send SIGTERM: turn it into SystemExit so the finally blocks stop moto and Ray.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    proc, endpoint = start_moto()
    results: dict = {"batch_size": BATCH, "cpus": os.cpu_count(), "load_avg_start": os.getloadavg()}
    try:
        env = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}
        os.environ.update(env)
        boto3.client("s3").create_bucket(Bucket="gensweep-bench")
        with tempfile.TemporaryDirectory() as tmp:
            uris = {"local": os.path.join(tmp, "mnist-32"), "s3": "s3://gensweep-bench/mnist-32"}
            for name, uri in uris.items():
                t0 = time.perf_counter()
                m = prepare("mnist", uri, resolution=32)
                results[f"prepare_{name}_s"] = round(time.perf_counter() - t0, 2)
            results["fingerprint"] = m.short_fingerprint
            ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": env},
                     logging_level="WARNING", log_to_driver=False)
            ray.data.DataContext.get_current().enable_progress_bars = False
            try:
                step = GanStep()
                step_s = time_step(step)
                results["gan_step_s"] = round(step_s, 4)
                results["gan_consumes_img_s"] = round(BATCH / step_s, 1)
                for name, uri in uris.items():
                    for mode in ("materialize", "stream"):
                        key = f"{name}/{mode}"
                        results[f"deliver {key}"] = delivery(open_dataset, ShardLoader, uri, mode, args.epochs)
                        results[f"train {key}"] = training(open_dataset, ShardLoader, uri, mode,
                                                           args.train_epochs, args.train_steps, step)
                        print(key, results[f"deliver {key}"], results[f"train {key}"], flush=True)
            finally:
                ray.shutdown()
    finally:
        stop_moto(proc)
    write_results(results, args.json)


if __name__ == "__main__":
    main()
