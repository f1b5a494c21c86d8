"""The sweep's TensorBoard files: scalars at the training step (not Tune's iteration) and each
evaluation's sample grid as an image at its step. The callback is driven as Tune drives it."""
from __future__ import annotations

import glob
import struct
import torch

from gensweep.platform.sweep.tensorboard import sweep_tensorboard
from gensweep.platform.trial.images import png_bytes


def read_events(logdir):
    """Every event in the TFRecord files under ``logdir`` (length, crc, payload, crc per record)."""
    from tensorboardX.proto import event_pb2

    events = []
    for path in glob.glob(f"{logdir}/events.out.tfevents.*"):
        data = open(path, "rb").read()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = event_pb2.Event()
            event.ParseFromString(data[at + 12 : at + 12 + length])
            events.append(event)
            at += 12 + length + 4
    return events


class Trial:
    """What Tune's TensorBoard logger reads of a trial (hashable: it keys its writers by trial)."""

    def __init__(self, local_path):
        self.local_path, self.evaluated_params, self.trial_id = local_path, {}, "t1"

    def init_local_path(self):
        import os

        os.makedirs(self.local_path, exist_ok=True)


def test_scalars_at_the_training_step_and_the_sample_grid_as_an_image(tmp_path):
    grid = tmp_path / "samples-step0000015.png"
    grid.write_bytes(png_bytes(torch.zeros(4, 1, 8, 8)))
    logdir = tmp_path / "trial"
    trial = Trial(str(logdir))
    tb = sweep_tensorboard()
    for iteration, step in ((1, 15), (2, 30)):
        tb.log_trial_result(iteration, trial, {"fid": 100.0 / iteration, "step": step, "training_iteration": iteration,
                                               "sample_grid": str(grid)})
    tb.log_trial_end(trial)
    events = read_events(logdir)
    fid = {e.step: v.simple_value for e in events for v in e.summary.value if v.tag == "ray/tune/fid"}
    assert fid == {15: 100.0, 30: 50.0}
    images = {e.step: v.image for e in events for v in e.summary.value if v.HasField("image")}
    assert sorted(images) == [15, 30]
    assert images[15].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n" and images[15].width == grid_width(grid)


def grid_width(path):
    from PIL import Image

    return Image.open(path).size[0]
