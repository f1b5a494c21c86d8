"""The experiment spec: one typed, validated YAML document per sweep.

A bad field fails here, naming the field and the allowed values, before Ray starts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gensweep.platform.metrics.protocol import METRICS
from gensweep.platform.metrics.refstats import REFERENCE_NAME
from gensweep.platform.spec.checks import (
    check_family,
    check_inline_single_worker,
    check_reference_alone,
    check_seed_axis,
    load_space,
    stretch_alias,
    trial_launcher,
    trial_restarts,
)
from gensweep.platform.spec.objectives import Objective, check_objectives, primary_from_objectives
from gensweep.platform.spec.rules import Seed, bounded_lines, check_consistency, check_grid_size, check_ladder
from gensweep.platform.spec.sampling import check_sampling_space, check_some_setting, sampling_grid, split_space
from gensweep.platform.spec.space import SearchSpace
from gensweep.platform.spec.yaml_load import YamlInputError, load_yaml_text, read_yaml_file
from gensweep.platform.storage.secrets import refuse_password
from gensweep.platform.spec.scheduler import SchedulerConfig, check_scheduler
from gensweep.trainables.families import FAMILIES


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # no spec field means nan or inf


class SearchConfig(_Strict):
    algorithm: Literal["optuna-tpe", "optuna-nsga2", "random", "grid"] = "optuna-tpe"
    num_trials: int = Field(6, ge=1, description="configs to sample, each run once per seed; ignored by grid"
                            " (the grid size decides)")
    max_concurrent: int | None = Field(
        None, ge=1, description="trials at once; unset: as many as the cluster holds (never more)")
    metric: str = "fid"
    mode: Literal["min", "max"] = "min"
    metrics: list[Objective] | None = Field(
        None, min_length=2, description="several objectives (multi-objective search; exclusive with metric/mode):"
        " the first is the primary one (ASHA, leaderboard order); see platform/spec/objectives.py")
    seeds: list[Seed] | None = Field(
        None, min_length=1, description="replicate axis of every algorithm: each sampled config (or grid cell)"
        " runs once per seed, all under one config_id; unset: once, at the trainable's seed (the spec's seed)")
    optuna_storage: Annotated[str | None, AfterValidator(refuse_password)] = Field(
        None, description="SQLAlchemy URL for the Optuna study; its password from the secrets file or environment")

    @model_validator(mode="after")
    def _objectives(self):
        return primary_from_objectives(self)

    def objectives(self) -> list[tuple[str, str]]:
        """``(name, mode)`` of every objective, the primary first."""
        return [(o.name, o.mode) for o in self.metrics] if self.metrics else [(self.metric, self.mode)]


class ResourcesConfig(_Strict):
    workers: int = Field(1, ge=1, description="training workers per trial")
    cpus_per_worker: float = Field(1.0, gt=0.0)
    gpus_per_worker: float = Field(0.0, ge=0.0, description="fractions pack several trials on a GPU")
    launcher: Literal["auto", "train", "inline"] = Field(
        "auto",
        description="auto: inline for a single-worker trial, train for more workers; train: a Ray Train"
        " TorchTrainer per trial; inline: a single-worker trial runs in the Tune trial actor itself"
        " (no worker group to start; same training loop)",
    )
    max_failures: int = Field(
        0, ge=0, description="restarts from the latest checkpoint: of the worker group (train launcher) or"
        " of the trial actor (inline launcher)")

    @model_validator(mode="after")
    def _inline_is_single_worker(self):
        return check_inline_single_worker(self)

    @property
    def trial_launcher(self) -> Literal["train", "inline"]:
        """The launcher a trial runs with: ``auto`` is resolved here, and nowhere else."""
        return trial_launcher(self.launcher, self.workers)

    @property
    def inline(self) -> bool:
        """Whether the Tune trial actor runs the loop itself (and so holds the worker's resources)."""
        return self.trial_launcher == "inline"

    @property
    def trial_restarts(self) -> int:
        """Tune's restarts of a whole trial (``tune.FailureConfig``): an inline trial's actor is its
        worker, so ``max_failures`` applies there; a train trial's restarts are Train's (of the worker
        group, inside the trial), and Tune's stay 0 so that a failure is not retried twice over."""
        return trial_restarts(self.max_failures, self.inline)


class StorageConfig(_Strict):
    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    secrets_file: str | None = Field(
        None,
        exclude=True,  # a path only, and still not copied into saved specs, Tune params or results
        description="YAML or INI file of credentials (e.g. aws_secret_access_key) loaded into each process's"
        " environment; see gensweep.platform.storage.secrets",
    )


class DataConfig(_Strict):
    source: str = Field("mnist", description="'mnist', torchvision:NAME, or (local or s3://) an image folder,"
                        " .npz/.npy, CIFAR python archive, HF Parquet/Arrow or WebDataset .tar (README)")
    uri: str | None = Field(None, description="prepared dataset; default: <results.root>/datasets/<source>-<res>")
    resolution: int = Field(32, ge=4)
    channels: Literal[1, 3] = 1
    resize: Annotated[Literal["pad", "stretch", "center-crop"],  # 'resize': the older name of stretch
                      BeforeValidator(stretch_alias)] = "pad"
    resize_filter: Literal["bicubic", "bilinear", "lanczos", "box", "hamming", "nearest"] = Field(
        "bicubic", description="PIL filter of every resize (bicubic shrinks with antialiasing, as clean-fid argues)")
    fraction: float = Field(1.0, gt=0.0, le=1.0)
    seed: Seed = 0
    hflip: bool = False
    bad_records: Literal["fail", "skip"] = Field("fail", description="an unreadable image (prepare) or record"
                                                 " (training): fail naming it, or skip and count it")
    max_shared_bytes: int = Field(
        2 * 1024**3, ge=0,
        description="datasets up to this decoded size (float32 pixels) are read once by the driver and shared"
        " with every trial through the object store; larger ones are streamed by each trial through Ray Data"
        " (0: always stream)")
    max_worker_bytes: int = Field(512 * 1024**2, ge=0, description="a streamed dataset: a worker keeps its share"
                                  " in memory after the first epoch up to this decoded size, else streams every epoch")
    readahead_batches: int = Field(16, ge=0, description="streamed: batches a worker reads ahead of its loop (0: none)")
    storage: StorageConfig | None = None


class LadderRung(_Strict):
    until_step: int = Field(ge=1, description="evaluations at steps up to this one (inclusive) use this rung")
    num_samples: int = Field(ge=2, description="fake samples of those evaluations")


def _registered_metric(name: Any) -> Any:
    if not (isinstance(name, str) and name in METRICS):
        allowed = [repr(n) for n in METRICS.names()]
        raise ValueError("must be one of " + (f"{', '.join(allowed[:-1])} or {allowed[-1]}" if len(allowed) > 1
                                              else allowed[0]))
    return name


MetricName = Annotated[str, BeforeValidator(_registered_metric)]  # a name in the metrics registry


class EvalConfig(_Strict):
    backbone: str = "mnist-lenet"
    num_samples: int = Field(1000, ge=2, description="fake samples per evaluation (after the ladder: all of them)")
    ref_samples: int | None = Field(None, ge=2, description="real images for reference statistics (a seeded random"
                                    " subset, stratified by label); None: all")
    ref_seed: Seed = Field(0, description="seed of the ref_samples subset (part of the reference statistics' key)")
    reference: str | None = Field(None, pattern=REFERENCE_NAME,
                                  description="name of published statistics imported with `gensweep refstats import`"
                                  " (instead of statistics of the dataset)")
    batch_size: int = Field(250, ge=1)
    metrics: list[MetricName] = Field(default_factory=lambda: ["fid"], min_length=1)
    latent_seed: Seed = 1234
    ladder: list[LadderRung] = Field(
        default_factory=list,
        description="cheaper early evaluations: rungs in ascending until_step, each with fewer fake samples"
        " than the next and than num_samples; steps after the last rung use num_samples",
    )

    @field_validator("reference")
    @classmethod
    def _reference_alone(cls, name: str | None, info: ValidationInfo) -> str | None:
        return check_reference_alone(name, info.data.get("ref_samples"))

    @field_validator("ladder")
    @classmethod
    def _ascending_ladder(cls, rungs: list[LadderRung], info: ValidationInfo) -> list[LadderRung]:
        return check_ladder(rungs, info.data.get("num_samples"))  # absent when num_samples itself failed


class ResultsConfig(_Strict):
    root: str = Field("./gensweep_results", description="local path or s3://bucket/prefix")


class ExperimentSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    family: str = "gan"
    seed: Seed = 0
    trainable: dict[str, Any] = Field(default_factory=dict, description="fixed settings of the trainable")
    space: SearchSpace = Field(default_factory=SearchSpace)
    search: SearchConfig = Field(default_factory=SearchConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    results: ResultsConfig = Field(default_factory=ResultsConfig)

    @field_validator("family")
    @classmethod
    def _family(cls, v: str) -> str:
        return check_family(v)

    @field_validator("space", mode="before")
    @classmethod
    def _load_space(cls, v: Any) -> Any:
        return load_space(v)

    @model_validator(mode="after")
    def _check_against_family(self):
        return check_objectives(check_against_family(self))

    @model_validator(mode="after")
    def _sections_agree(self):
        return check_consistency(self)

    @model_validator(mode="after")
    def _scheduler_fits(self):
        return check_scheduler(self)

    @model_validator(mode="after")
    def _seed_is_the_replicate_axis(self):
        return check_seed_axis(self, FAMILIES.get(self.family).config.model_fields)

    def replicate_seeds(self) -> list[int]:
        """The seeds every sampled config (or grid cell) runs with: ``search.seeds``, or else the
        one seed a trial would get anyway (``trainable.seed``, else the spec's ``seed``)."""
        return list(self.search.seeds) if self.search.seeds is not None else [int(self.trial_defaults()["seed"])]

    def trial_defaults(self) -> dict[str, Any]:
        """Fixed settings plus what the data and eval sections imply for the trainable."""
        cfg_fields = FAMILIES.get(self.family).config.model_fields
        implied = {"resolution": self.data.resolution, "channels": self.data.channels, "seed": self.seed}
        return {**{k: v for k, v in implied.items() if k in cfg_fields}, **self.trainable}

    def trial_values(self, sampled: dict[str, Any]) -> dict[str, Any]:
        """A trial's settings before validation: defaults, ``sampled`` and its grid of sampling-time
        settings (which replaces any sampling-time value among ``sampled``)."""
        values = {**self.trial_defaults(), **sampled}
        grid = sampling_grid(self.space, self.family, values)
        sampling = split_space(self.space, self.family)[1].params
        return {**{k: v for k, v in values.items() if k not in sampling}, "sampling_grid": grid} if grid else values

    def training_space(self) -> SearchSpace:
        """The searched parameters: the space without its sampling-time ones (every trial scores those)."""
        return split_space(self.space, self.family)[0]

    def trial_config(self, sampled: dict[str, Any]) -> BaseModel:
        """The family's config model of one trial, validated once; an infeasible combination raises
        :class:`InfeasibleConfig` with the family's rule messages."""
        try:
            return FAMILIES.get(self.family).config.model_validate(self.trial_values(sampled))
        except ValidationError:  # a subclass of ValueError: caught first
            problems = self.violations(sampled)  # only on failure: the messages, field errors first
            if not problems:
                raise
        except ValueError as e:  # no sampling-time setting is valid with these values
            problems = [str(e)]
        raise InfeasibleConfig(f"infeasible trial config {sampled}: " + "; ".join(problems))

    def resolve_trial(self, sampled: dict[str, Any]) -> dict[str, Any]:
        """The full, validated trainable config of one trial as plain data (:meth:`trial_config`)."""
        return self.trial_config(sampled).model_dump()

    def violations(self, sampled: dict[str, Any]) -> list[str]:
        """Why the trial config of ``sampled`` parameters cannot run (the family's rules); [] when it can."""
        try:
            return FAMILIES.get(self.family).violations(self.trial_values(sampled))
        except ValueError as e:  # no sampling-time setting is valid with these values
            return [str(e)]

    def feasible_cells(self, cells: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        """Grid cells the family's rules allow, and one message per dropped cell."""
        keep, dropped = [], []
        for cell in cells:
            problems = self.violations(cell)
            if problems:
                dropped.append(f"{cell}: {'; '.join(problems)}")
            else:
                keep.append(cell)
        return keep, dropped

    def max_evals(self) -> int:
        cfg = FAMILIES.get(self.family).config.model_validate(self.trial_defaults())
        steps, every = getattr(cfg, "steps"), getattr(cfg, "eval_every")
        return -(-steps // every)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def check_against_family(spec: ExperimentSpec) -> ExperimentSpec:
    """Every fixed and searched setting is a field of the family's config, valid at every level, and a
    grid has at least one feasible cell."""
    check_sampling_space(spec.space, spec.family)
    cfg_model = FAMILIES.get(spec.family).config
    fields = set(cfg_model.model_fields)
    for key in spec.trainable:
        if key not in fields:
            raise ValueError(f"trainable.{key}: unknown setting for family {spec.family!r}; allowed: {', '.join(sorted(fields))}")
    for key in spec.space.params:
        if key not in fields:
            raise ValueError(f"space.{key}: unknown parameter for family {spec.family!r}; allowed: {', '.join(sorted(fields))}")
        if key in spec.trainable:
            raise ValueError(f"space.{key}: also fixed in trainable.{key}; a setting is either fixed or searched")
    base = spec.trial_defaults()
    _validate_config(cfg_model, base, "trainable")
    check_some_setting(spec.space, spec.family, base)
    for key, p in spec.space.params.items():
        for level in p.checked_levels():  # a long int range: its ends only (never expanded)
            _validate_config(cfg_model, {**base, key: level}, f"space.{key}", level)
    if spec.search.algorithm == "grid":
        try:
            check_grid_size(spec)
            spec.training_space().grid()
        except ValueError as e:
            raise ValueError(f"search.algorithm: grid: {e}") from None
        if not spec.feasible_cells(spec.training_space().grid())[0]:
            raise ValueError("space: every grid cell breaks a combination rule of family " + repr(spec.family))
        if spec.scheduler.kind != "none":
            raise ValueError(
                f"scheduler.kind: {spec.scheduler.kind!r} stops cells early, but a factorial grid gives every"
                " cell the same budget; use 'none'"
            )
    return spec


class SpecError(ValueError):
    """A spec that cannot run; the message names the field."""


class InfeasibleConfig(ValueError):
    """A sampled trial config that the family's combination rules forbid."""


def _validate_config(model: type[BaseModel], values: dict[str, Any], where: str, level: Any = None) -> None:
    # A single level is checked on its own, so combination rules (which may need other
    # levels, e.g. wgan with gp) are left to the grid filter and to each trial's config.
    try:
        model.model_validate(values, context={"rules": level is None})
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            msg = err["msg"].removeprefix("Value error, ")
            if level is None:
                msgs.append(f"{where}.{loc}: {msg}")
            else:
                msgs.append(f"{where}: level {level!r}: {msg}")
        raise ValueError("; ".join(msgs)) from None


def parse_spec(data: dict[str, Any]) -> ExperimentSpec:
    if not isinstance(data, dict):
        raise SpecError(f"a spec must be a YAML mapping, got {type(data).__name__}")
    try:
        return ExperimentSpec.model_validate(data)
    except ValidationError as e:
        raise SpecError(format_errors(e)) from None


def format_errors(e: ValidationError) -> str:
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith("function-after"))
        loc = loc if len(loc) <= 200 else loc[:197] + "..."  # a key may be any length
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
            msg = f"must be one of {err['ctx']['expected']}"
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "invalid spec:\n  " + "\n  ".join(bounded_lines(lines))


def load_spec(path: str | Path) -> ExperimentSpec:
    """The spec in the YAML file ``path``, read strictly and within bounds (:mod:`.yaml_load`)."""
    try:
        return parse_spec(read_yaml_file(path, "spec"))
    except YamlInputError as e:
        raise SpecError(str(e)) from None


def default_spec() -> ExperimentSpec:
    from importlib import resources

    text = (resources.files("gensweep.platform.spec") / "default_spec.yaml").read_text()
    return parse_spec(load_yaml_text(text, "the default spec"))
