"""The evaluation ladder: the schedule, its spec validation, and a trial scored along it (no Ray)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from gensweep.platform.trial.evaluation import WorkerEvaluator, make_protocol
from gensweep.platform.metrics import ProtocolMismatch, RefStats, SampleLadder
from gensweep.platform.spec import SpecError, parse_spec
from tests.eval_support import run_trial, tiny_data, tiny_spec  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_schedule_uses_the_first_rung_that_covers_the_step_then_the_full_n():
    ladder = SampleLadder.from_rungs(1000, [{"until_step": 300, "num_samples": 250},
                                            {"until_step": 600, "num_samples": 500}])
    assert [ladder.num_samples(s) for s in (1, 300, 301, 600, 601, 10**6)] == [250, 250, 500, 500, 1000, 1000]
    assert {SampleLadder(1000).num_samples(s) for s in (1, 300, 10**6)} == {1000}


@pytest.mark.parametrize("n", [5, 40, 250, 999])
def test_a_rung_protocol_equals_the_protocol_built_for_its_n(n):
    settings = dict(backbone="mnist-lenet", batch_size=250, latent_seed=3, metrics=["fid", "kid"])
    full = make_protocol(num_samples=1000, **settings)
    assert full.with_samples(n) == make_protocol(num_samples=n, **settings)
    assert full.with_samples(n).num_samples == n and full.with_samples(n).batch_size <= n


@pytest.mark.parametrize("ladder, message", [
    ([{"until_step": 300, "num_samples": 250}, {"until_step": 300, "num_samples": 500}],
     "eval.ladder: rung 1: until_step 300 must be greater than rung 0's 300"),
    ([{"until_step": 300, "num_samples": 500}, {"until_step": 600, "num_samples": 250}],
     "eval.ladder: rung 1: num_samples 250 must be greater than rung 0's 500"),
    ([{"until_step": 300, "num_samples": 1000}],
     "eval.ladder: rung 0: num_samples 1000 must be below eval.num_samples 1000"),
    ([{"until_step": 0, "num_samples": 250}], "eval.ladder.0.until_step: Input should be greater than or equal to 1"),
    ([{"until_step": 300, "num_samples": 1}], "eval.ladder.0.num_samples: Input should be greater than or equal to 2"),
    ([{"until_step": 300}], "eval.ladder.0.num_samples: Field required"),
    ([{"until_step": 300, "n": 250}], "eval.ladder.0.n: unknown field"),
])
def test_spec_errors_name_the_ladder_field(ladder, message):
    with pytest.raises(SpecError) as err:
        parse_spec({"name": "x", "eval": {"num_samples": 1000, "ladder": ladder}})
    assert message in str(err.value)


def test_a_valid_ladder_parses():
    spec = parse_spec({"name": "x", "eval": {"num_samples": 1000, "ladder": [{"until_step": 300, "num_samples": 250}]}})
    assert spec.eval.ladder[0].until_step == 300 and spec.eval.ladder[0].num_samples == 250
    assert parse_spec({"name": "x"}).eval.ladder == []


def test_a_trial_is_scored_along_the_ladder_against_one_reference_set(tiny_data, tmp_path):
    spec = tiny_spec(tmp_path, tiny_data)  # evals at 4, 8, 12; ladder 40 up to step 4, 70 up to 8, then 100
    ctx, runtime = run_trial(spec, tiny_data, tmp_path)
    assert [r["step"] for r in ctx.reports] == [4, 8, 12]
    assert [r["eval_n"] for r in ctx.reports] == [40, 70, 100]
    assert all(r["fid"] > 0 and r["backbone"] == "mnist-lenet" for r in ctx.reports)
    # one reference set (ref_samples real images) for every rung; only the fake N moves
    assert runtime.key.n == 200 and {r["refstats_key"] for r in ctx.reports} == {runtime.refstats_key}
    evaluator = WorkerEvaluator.from_config(runtime, torch.device("cpu"))
    assert {r["eval_protocol"] for r in ctx.reports} == {evaluator.backbone.protocol}
    assert [evaluator.protocol_at(s).kid_subset_size for s in (4, 8, 12)] == [40, 70, 100]

    # the protocol guard still refuses reference statistics made under another feature protocol, at any rung
    other = dataclasses.replace(evaluator.ref.key, protocol="another-backbone-v1")
    foreign = WorkerEvaluator(evaluator.protocol, RefStats(other, evaluator.ref.mu, evaluator.ref.sigma,
                                                           evaluator.ref.features), torch.device("cpu"),
                              evaluator.ladder)
    with pytest.raises(ProtocolMismatch, match="protocol: reference='another-backbone-v1'"):
        foreign.evaluate(lambda count, seed: torch.zeros(count, 1, 16, 16), step=4)
