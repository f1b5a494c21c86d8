"""A corpus of hostile and careless specs, as data (used by tests/test_spec_hostile.py).

Every case is written as the YAML text (or bytes) a user could save; ``{ROOT}`` stands for a
writable results root. ``HEAD`` is a valid spec's first lines, so a case changes one thing.
``files`` are written next to the spec (the test runs in that folder). ``expect`` are texts
the error message must hold: the field (its dotted path) and, where useful, the reason.
Cases marked ``bounded`` could exhaust memory or time without the bounds, so they run in a
forked child under RLIMIT_AS and an alarm.
"""
from __future__ import annotations

from dataclasses import dataclass, field

HEAD = ("name: hostile\n"
        "trainable: {steps: 30, eval_every: 15, width: 8, batch_size: 32, num_classes: 0}\n"
        "results: {root: '{ROOT}'}\n")
RANDOM = "search: {algorithm: random, num_trials: 2}\n"


@dataclass(frozen=True)
class Case:
    id: str
    text: str | bytes
    expect: tuple[str, ...]
    files: dict[str, str | bytes] = field(default_factory=dict)
    bounded: bool = False


def _bomb(levels: int = 9, width: int = 9) -> str:
    """Nested anchors: ``levels`` x ``width`` aliases expand to width**levels values."""
    rows = ["[" + ", ".join(["lol"] * width) + "]"]
    rows += ["[" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "[" + ", ".join(f"&a{i} {row}" for i, row in enumerate(rows)) + "]"


def _merge_bomb(levels: int = 8, width: int = 9) -> str:
    lines = ["m0: &m0 {" + ", ".join(f"k{j}: x" for j in range(width)) + "}"]
    for i in range(1, levels):
        lines.append(f"m{i}: &m{i} {{" + ", ".join(f"k{j}: *m{i - 1}" for j in range(width)) + "}")
    return "\n".join(lines) + "\n"


def _deep_flow(depth: int) -> str:
    return "[" * depth + "]" * depth


def _deep_block(depth: int) -> str:
    return "".join("  " * i + f"k{i}:\n" for i in range(depth)) + "  " * depth + "leaf\n"


Z_DIM_INT = "  z_dim: {type: int, low: 8, high: 16, step: 8}\n"
REG_WEIGHT = "  reg_weight: {{type: uniform, low: 0.1, high: 1.0, when: {{{parent}: {values}}}}}\n"

CORPUS: list[Case] = [
    # --- duplicate keys: PyYAML keeps the last one silently
    Case("dup-top-level-name", HEAD + "name: other\n", ("name", "twice")),
    Case("dup-flow-key", HEAD + "search: {num_trials: 4, num_trials: 8}\n", ("search.num_trials", "twice")),
    Case("dup-block-key", HEAD + "search:\n  metric: fid\n  mode: min\n  metric: kid\n", ("search.metric", "twice")),
    Case("dup-space-parameter", HEAD + "space:\n  loss: [ns, hinge]\n  loss: [lsgan]\n", ("space.loss", "twice")),
    Case("dup-quoted-and-plain", HEAD + '"name": again\n', ("name", "twice")),
    Case("dup-int-keys-spelled-differently", HEAD + "eval: {metrics: [fid]}\nx: {1: a, 0x1: b}\n", ("x.0x1", "twice")),
    Case("dup-section", HEAD + "data: {resolution: 32}\ndata: {channels: 1}\n", ("data", "twice")),
    # --- alias bombs, recursion, deep nesting (bounded)
    Case("alias-bomb-in-choices", HEAD + f"space:\n  loss:\n    type: categorical\n    choices: {_bomb()}\n",
         ("space.loss.choices", "aliases"), bounded=True),
    Case("alias-bomb-top-level", HEAD + f"lol: {_bomb()}\n", ("lol", "aliases"), bounded=True),
    Case("alias-bomb-merge-keys", HEAD + _merge_bomb() + "trainable2:\n  <<: *m7\n", ("aliases",), bounded=True),
    Case("alias-bomb-in-trainable", HEAD.replace("num_classes: 0}", f"num_classes: 0, x: {_bomb(7)}}}"),
         ("trainable.x", "aliases"), bounded=True),
    Case("recursive-alias", HEAD + "eval: &e {metrics: [fid], x: *e}\n", ("eval.x", "aliases"), bounded=True),
    Case("deep-flow-nesting", HEAD + f"space: {{loss: {_deep_flow(20000)}}}\n", ("space.loss.0.0", "nested deeper"),
         bounded=True),
    Case("deep-block-nesting", HEAD + "data:\n" + "".join("  " + line + "\n" for line in _deep_block(200).splitlines()),
         ("data.k0.k1", "nested deeper")),
    Case("deep-flow-mappings", HEAD + "trainable2: " + "{a: " * 100 + "1" + "}" * 100 + "\n", ("trainable2.a.a", "nested deeper")),
    Case("huge-int-range-checked-at-its-ends", HEAD + RANDOM + "space:\n  z_dim: {type: int, low: 0, high: 1000000000000000}\n",
         ("space.z_dim", "level 0"), bounded=True),
    Case("huge-grid", HEAD + "search: {algorithm: grid}\nscheduler: {kind: none}\nspace:\n"
         "  z_dim: {type: int, low: 1, high: 100000000}\n  lecam_start: {type: int, low: 0, high: 100000000}\n",
         ("search.algorithm", "grid", "limit"), bounded=True),
    Case("huge-grid-of-categoricals", HEAD + "search: {algorithm: grid}\nscheduler: {kind: none}\nspace:\n"
         + "".join(f"  {p}: [{', '.join(str(v) for v in range(lo, lo + 40))}]\n"
                   for p, lo in [("z_dim", 1), ("n_dis", 1), ("reg_interval", 1), ("ada_interval", 1)]),
         ("search.algorithm", "grid", "limit"), bounded=True),
    Case("grid-over-limit-by-seeds", HEAD + "search: {algorithm: grid, seeds: [" + ", ".join(map(str, range(200)))
         + "]}\nscheduler: {kind: none}\nspace:\n  z_dim: {type: int, low: 1, high: 100}\n",
         ("search.algorithm", "grid", "seed")),
    # --- size and encoding
    Case("file-over-size-limit", HEAD + "# " + "x" * (300 * 1024) + "\n", ("larger than",)),
    Case("huge-name", "name: " + "a" * 100_000 + "\nresults: {root: '{ROOT}'}\n", ("name",)),
    Case("latin1-bytes", (HEAD + "data: {source: caf\xe9}\n").encode("latin-1"), ("not UTF-8", "line 4", "data")),
    Case("utf16-file", ("\ufeff" + HEAD).encode("utf-16"), ("not UTF-8", "line 1")),
    Case("nul-byte", HEAD + "eval: {backbone: mnist\x00lenet}\n", ("not valid YAML", "line 4", "eval")),
    Case("tab-indentation", HEAD + "search:\n\tnum_trials: 3\n", ("not valid YAML", "line 5")),
    Case("two-documents", HEAD + "---\nname: second\n", ("not valid YAML", "single document")),
    Case("unhashable-key", HEAD + "? [a, b]\n: 1\n", ("not valid YAML",)),
    Case("python-object-tag", HEAD + "x: !!python/object/new:os.system [echo pwned]\n", ("not valid YAML", "line 4")),
    Case("nul-in-results-root", 'name: hostile\nresults: {root: "/tmp/gensweep\\0root"}\n', ("results.root", "NUL")),
    Case("thousands-of-unknown-keys", HEAD + "".join(f"junk{i}: {i}\n" for i in range(3000)), ("junk0", "unknown field", "more")),
    Case("long-unknown-key", HEAD + "k" * 20_000 + ": 1\n", ("not valid YAML", "line 4")),  # PyYAML: keys < 1024
    # --- space files
    Case("space-file-latin1", HEAD + "space: bad.yaml\n", ("space", "not UTF-8"),
         files={"bad.yaml": "params:\n  loss: [ns, h\xe9]\n".encode("latin-1")}),
    Case("space-file-missing", HEAD + "space: nowhere.yaml\n", ("space", "cannot read", "nowhere.yaml")),
    Case("space-file-is-a-folder", HEAD + "space: folder.yaml\n", ("space", "cannot read"), files={"folder.yaml/x": "1"}),
    Case("space-file-invalid-yaml", HEAD + "space: broken.yaml\n", ("space", "not valid YAML"),
         files={"broken.yaml": "params: [unclosed\n"}),
    Case("space-file-not-a-mapping", HEAD + "space: list.yaml\n", ("space", "'params'"), files={"list.yaml": "- a\n- b\n"}),
    Case("space-file-dup-keys", HEAD + "space: dup.yaml\n", ("space", "params.loss", "twice"),
         files={"dup.yaml": "params:\n  loss: [ns]\n  loss: [hinge]\n"}),
    Case("space-file-alias-bomb", HEAD + "space: bomb.yaml\n", ("space", "aliases"),
         files={"bomb.yaml": f"params:\n  loss: {_bomb()}\n"}, bounded=True),
    Case("space-name-typo", HEAD + "space: gan-quik\n", ("space", "unknown search space")),
    Case("space-not-a-mapping", HEAD + "space: 42\n", ("space",)),
    # --- YAML 1.1 surprises: yes/no/on/off are words, not booleans; no sexagesimal numbers
    Case("yes-as-num-trials", HEAD + "search: {num_trials: yes}\n", ("search.num_trials",)),
    Case("on-as-workers", HEAD + "resources: {workers: on}\n", ("resources.workers",)),
    Case("off-as-max-failures", HEAD + "resources: {max_failures: off}\n", ("resources.max_failures",)),
    Case("yes-as-seed", HEAD + "seed: yes\n", ("seed",)),
    Case("no-as-backbone", HEAD + "eval: {backbone: no}\n", ("eval.backbone", "'no'")),
    Case("sexagesimal-steps", HEAD.replace("steps: 30", "steps: 1:30"), ("trainable.steps",)),
    Case("yes-in-int-when", HEAD + "space:\n" + Z_DIM_INT + REG_WEIGHT.format(parent="z_dim", values="[yes]"),
         ("when.z_dim",)),
    # --- non-finite numbers
    Case("nan-low", HEAD + "space: {lr: {type: uniform, low: .nan, high: 0.001}}\n", ("space.lr.low", "finite")),
    Case("inf-high", HEAD + "space: {ttur: {type: uniform, low: 1.0, high: .inf}}\n", ("space.ttur.high", "finite")),
    Case("overflowing-float", HEAD + "space: {ttur: {type: uniform, low: 1.0, high: 1e999}}\n",
         ("space.ttur.high", "finite")),
    Case("quoted-nan", HEAD + "space: {ttur: {type: loguniform, low: 'nan', high: 2.0}}\n", ("space", "ttur", "finite")),
    Case("inf-reduction-factor", HEAD + "scheduler: {reduction_factor: .inf}\n", ("scheduler.reduction_factor",)),
    Case("inf-cpus", HEAD + "resources: {cpus_per_worker: .inf}\n", ("resources.cpus_per_worker",)),
    Case("nan-trainable-setting", HEAD.replace("num_classes: 0}", "num_classes: 0, cond_weight: .NaN}"),
         ("trainable.cond_weight", "finite")),
    Case("nan-in-choices", HEAD + "space: {ttur: [1.0, .nan]}\n", ("space.ttur.1", "finite")),
    # --- seeds
    Case("seed-of-65-bits", HEAD + "seed: 18446744073709551616\n", ("seed",)),
    Case("seed-of-80-bits", HEAD + "seed: 999999999999999999999999\n", ("seed",)),
    Case("negative-seed", HEAD + "seed: -1\n", ("seed",)),
    Case("replicate-seed-too-wide", HEAD + "search: {seeds: [0, 99999999999999999999999]}\n", ("search.seeds",)),
    Case("data-seed-too-wide", HEAD + "data: {seed: 36893488147419103232}\n", ("data.seed",)),
    Case("latent-seed-too-wide", HEAD + "eval: {latent_seed: 36893488147419103232}\n", ("eval.latent_seed",)),
    Case("ref-seed-negative", HEAD + "eval: {ref_seed: -5}\n", ("eval.ref_seed",)),
    Case("trainable-seed-too-wide", HEAD.replace("num_classes: 0}", "num_classes: 0, seed: 36893488147419103232}"),
         ("trainable.seed", "63 bits")),
    Case("replicate-seed-twice", HEAD + "search: {seeds: [1, 2, 1]}\n", ("search.seeds", "more than once")),
    # --- conditions
    Case("when-outside-int-range", HEAD + "space:\n" + Z_DIM_INT + REG_WEIGHT.format(parent="z_dim", values="[99]"),
         ("when.z_dim", "range")),
    Case("when-off-int-step", HEAD + "space:\n" + Z_DIM_INT + REG_WEIGHT.format(parent="z_dim", values="[12]"),
         ("when.z_dim",)),
    Case("when-bool-for-int", HEAD + "space:\n" + Z_DIM_INT + REG_WEIGHT.format(parent="z_dim", values="[true]"),
         ("when.z_dim",)),
    Case("when-string-for-int", HEAD + "space:\n" + Z_DIM_INT + REG_WEIGHT.format(parent="z_dim", values="['8']"),
         ("when.z_dim",)),
    Case("when-on-continuous-parent", HEAD + "space:\n  lr: {type: uniform, low: 0.0001, high: 0.001}\n"
         + REG_WEIGHT.format(parent="lr", values="[0.0005]"), ("when.lr", "continuous")),
    Case("when-yaml11-word-for-categorical", HEAD + "space:\n  reg: [none, r1]\n"
         + REG_WEIGHT.format(parent="reg", values="[on]"), ("when.reg",)),
    # --- space shapes
    Case("categorical-over-choice-limit", HEAD + "space: {z_dim: [" + ", ".join(map(str, range(1, 1500))) + "]}\n",
         ("space", "z_dim", "1000")),
    Case("categorical-choice-twice", HEAD + "space: {loss: [ns, hinge, ns]}\n", ("space", "loss", "twice")),
    Case("categorical-as-string", HEAD + "space: {loss: ns}\n", ("space", "loss")),
    Case("int-range-reversed", HEAD + "space: {z_dim: {type: int, low: 64, high: 8}}\n", ("space", "z_dim", "low")),
    Case("int-step-zero", HEAD + "space: {z_dim: {type: int, low: 8, high: 64, step: 0}}\n", ("space", "z_dim", "step")),
    Case("int-bound-fractional", HEAD + "space: {z_dim: {type: int, low: 8.5, high: 64}}\n", ("space", "z_dim", "low")),
    Case("many-bad-levels-bounded", HEAD + "space: {loss: [" + ", ".join(f"l{i:04d}" + "x" * 50 for i in range(900))
         + "]}\n", ("space.loss", "unknown adversarial loss")),
    # --- sections that contradict each other (caught before Ray)
    Case("metric-not-evaluated", HEAD + "search: {metric: kid}\neval: {metrics: [fid]}\n", ("search.metric", "eval.metrics")),
    Case("metric-wrong-case", HEAD + "search: {metric: FID}\n", ("search.metric",)),
    Case("optuna-storage-not-a-url", HEAD + "search: {optuna_storage: 'my database'}\n",
         ("search.optuna_storage", "cannot be parsed")),
    Case("optuna-storage-bad-port", HEAD + "search: {optuna_storage: 'postgresql://db.example.org:five/optuna'}\n",
         ("search.optuna_storage", "cannot be parsed")),
    Case("optuna-storage-unknown-dialect", HEAD + "search: {optuna_storage: 'nosuchdb://db.example.org/optuna'}\n",
         ("search.optuna_storage", "dialect")),
    Case("trainable-resolution-contradicts-data", HEAD.replace("num_classes: 0}", "num_classes: 0, resolution: 64}"),
         ("trainable.resolution", "data.resolution")),
    Case("trainable-channels-contradicts-data", HEAD.replace("num_classes: 0}", "num_classes: 0, channels: 3}"),
         ("trainable.channels", "data.channels")),
    Case("resolution-searched", HEAD + "space: {resolution: [16, 32]}\n", ("space.resolution", "data.resolution")),
    # --- valid documents the world cannot run: the dry run's preflight catches them
    Case("dry-run-gpu-on-cpu-machine", HEAD + "resources: {gpus_per_worker: 1}\n", ("resources.gpus_per_worker",)),
    Case("dry-run-trial-larger-than-machine", HEAD + "resources: {workers: 4, cpus_per_worker: 2}\n", ("resources",)),
    Case("dry-run-unknown-backbone", HEAD + "eval: {backbone: resnet-50}\n", ("eval.backbone",)),
    Case("dry-run-missing-source", HEAD + "data: {source: ./missing/digits.npz}\n", ("data.source", "does not exist")),
    Case("dry-run-root-under-a-file", "name: hostile\nresults: {root: a-file/results}\n", ("results.root", "writable"),
         files={"a-file": "x"}),
    # --- tired researcher
    Case("empty-mapping", "{}\n", ("name",)),
    Case("name-null", "name: null\nresults: {root: '{ROOT}'}\n", ("name",)),
    Case("name-cyrillic-lookalike", "name: \u0435xp\nresults: {root: '{ROOT}'}\n", ("name",)),
    Case("section-null", HEAD + "eval: null\n", ("eval",)),
    Case("seeds-empty", HEAD + "search: {seeds: []}\n", ("search.seeds",)),
    Case("metrics-empty", HEAD + "eval: {metrics: []}\n", ("eval.metrics",)),
]

VALID: list[Case] = [
    Case("valid-minimal", "name: ok\nresults: {root: '{ROOT}'}\n", ()),
    Case("valid-anchors-merge-and-yaml12-floats", HEAD + "space:\n  lr: &lr {type: loguniform, low: 1e-4, high: 1e-3}\n"
         "  ttur: {<<: *lr, type: uniform, low: 1, high: 4}\n", ()),
    Case("valid-space-file-and-int-condition", HEAD + "search: {algorithm: grid, seeds: [0, 1]}\nscheduler: {kind: none}\n"
         "space: mine.yaml\n", (),
         files={"mine.yaml": "params:\n  z_dim: {type: int, low: 8, high: 16, step: 8}\n"
                             "  n_dis: {type: int, low: 1, high: 2, when: {z_dim: [16]}}\n"
                             "  loss: [ns, hinge]\n"}),
    Case("valid-kid-search-with-replicates", HEAD + "search: {metric: kid, seeds: [1, 2, 3]}\n"
         "eval: {metrics: [fid, kid]}\ndata: {hflip: true}\n", ()),
    Case("valid-huge-int-range-sampled", HEAD + RANDOM + "space:\n  z_dim: {type: int, low: 1, high: 1000000000000}\n",
         (), bounded=True),
    Case("valid-diffusion", "name: diff\nfamily: diffusion\nseed: 9223372036854775807\nresults: {root: '{ROOT}'}\n"
         "search: {optuna_storage: 'sqlite:///optuna.db'}\n", ()),
]
