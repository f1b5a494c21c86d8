"""Mutation score of one trust-critical module against its own tests (mutmut 3.x).

    PYTHONPATH=$PWD .venv/bin/python tools/mutation.py gensweep/trainables/gan/losses.py [--children 2]

Copies the tracked files into a scratch directory, writes a ``[tool.mutmut]`` for that module
(``only_mutate``: the module; test selection: its files in ``[tool.gensweep.mutation]`` of
pyproject.toml; the other settings as in the repository's ``[tool.mutmut]``), runs ``mutmut run``
there and prints ``mutmut results`` and the raw score. The repository's tree is never touched.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def toml_value(value) -> str:
    return json.dumps(value)  # lists of strings, strings, booleans: TOML and JSON agree


def module_config(base: dict, module: str, tests: list[str]) -> str:
    cfg = dict(base)
    cfg.update(only_mutate=[module], pytest_add_cli_args_test_selection=tests)
    return "[tool.mutmut]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in cfg.items())


def scratch_copy(module: str) -> Path:
    target = Path(os.environ.get("GENSWEEP_MUTATION_DIR", "/tmp/gensweep-mutation")) / re.sub(r"\W", "_", module)
    target.mkdir(parents=True, exist_ok=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for rel in files:
        src, dst = REPO / rel, target / rel
        if src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(src.read_bytes())
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module")
    parser.add_argument("--children", type=int, default=2)
    args = parser.parse_args()
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    modules = pyproject["tool"]["gensweep"]["mutation"]
    if args.module not in modules:
        parser.error(f"{args.module} has no test selection in [tool.gensweep.mutation]; known: {', '.join(modules)}")
    work = scratch_copy(args.module)
    text = (work / "pyproject.toml").read_text()
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[)", "", text)
    (work / "pyproject.toml").write_text(text + "\n" + module_config(pyproject["tool"]["mutmut"], args.module, modules[args.module]))
    mutmut = str(Path(sys.executable).with_name("mutmut"))
    env = {**os.environ, "PYTHONPATH": str(work)}
    subprocess.run([mutmut, "run", "--max-children", str(args.children)], cwd=work, env=env, check=False)
    results = subprocess.run([mutmut, "results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True).stdout
    print(results)
    states = [line.rsplit(":", 1)[1].strip() for line in results.splitlines() if ":" in line]
    killed = sum(s == "killed" for s in states)
    print(f"{args.module}: {len(states)} mutants, {killed} killed, {len(states) - killed} not killed "
          f"(raw score {killed / max(len(states), 1):.0%}); scratch copy: {work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
