"""One trial: how it is launched (inline or a Ray Train ``TorchTrainer``), the context its loop
runs in, its checkpoints, resources, evaluation glue and re-evaluation.

* :mod:`.launch`      -- the Tune function trainable; ``TrialPlan``; the TorchTrainer
* :mod:`.context`     -- the platform ``TrialContext`` (Ray Train and inline) and the worker loop
* :mod:`.handoff`     -- ``EvalRuntime`` and ``WorkerConfig``: what reaches the workers, typed
* :mod:`.checkpoints` -- the files of a trial checkpoint
* :mod:`.resources`   -- what a trial holds on a cluster, and how many fit
* :mod:`.evaluation`  -- reference statistics and the per-worker evaluator
* :mod:`.reeval`      -- re-scoring a stored checkpoint
* :mod:`.images`      -- sample grids as PNG bytes
"""
