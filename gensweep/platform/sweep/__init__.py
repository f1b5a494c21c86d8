"""One sweep: set-up, preflight, search and scheduling, the Tune run, resume, dashboards.

* :mod:`.runner`     -- ``run_sweep``: data and reference statistics once, then Tune x Train
* :mod:`.resume`     -- ``resume_sweep``: finish a sweep whose driver died
* :mod:`.search`     -- searcher and scheduler from the spec
* :mod:`.schedulers` -- Hyperband and PBT (with its first generation and lineage rows)
* :mod:`.study`      -- the Optuna searcher, in agreement with the store (pruned, steps, names)
* :mod:`.tensorboard`-- TensorBoard at the training step, with sample grids
* :mod:`.feasible`   -- a searcher that never starts a trial the family's rules forbid
* :mod:`.preflight`  -- checks of a valid spec against the world, before Ray starts
* :mod:`.dashboards` -- optuna-dashboard, TensorBoard and the Ray dashboard
* :mod:`.trial_logs` -- Tune's per-trial logs kept whole across a restart
"""
