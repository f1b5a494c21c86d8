"""Credentials for object storage: from the environment, an AWS profile, or a secrets file.

gensweep never takes a credential as a spec value or a command-line argument, and never
writes one anywhere. Three sources, in the usual AWS order of precedence:

1. environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``...);
2. a *secrets file* the spec references by path (``data.storage.secrets_file``): its keys are
   put into the process environment (names upper-cased: ``aws_secret_access_key`` ->
   ``AWS_SECRET_ACCESS_KEY``) where boto/s3fs/pyarrow find them; variables already set win;
3. the shared AWS config/credentials files and a named ``profile`` (``data.storage.profile``),
   instance roles, IRSA... (botocore's own chain).

A secrets file is YAML (a flat mapping) or INI (the AWS ``credentials`` format; the section
``[default]``, or the only section, is used). Only the file's *path* travels with the spec
(it is not even part of the saved spec YAML or the Tune params); each process that needs
the credentials reads the file itself (the driver before it starts Ray, so local Ray
workers inherit them; Ray workers on other nodes read the same path when they find it).
"""
from __future__ import annotations

import configparser
import os
import re
import stat
from pathlib import Path
from typing import Optional
from urllib.parse import quote, urlsplit, urlunsplit

import yaml

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SecretsError(ValueError):
    """A secrets file that cannot be used; the message never contains a value from it."""


def read_secrets_file(path: str | os.PathLike) -> dict[str, str]:
    """``{ENV_NAME: value}`` from a YAML or INI secrets file (values are never logged)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as e:
        raise SecretsError(f"secrets file {p}: cannot be read ({e.strerror})") from None
    data: object
    if re.search(r"^\s*\[[^\]]+\]\s*$", text, re.MULTILINE):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text)
        except configparser.Error as e:
            raise SecretsError(f"secrets file {p}: not a valid INI file ({type(e).__name__})") from None
        sections = parser.sections()
        section = "default" if "default" in sections else (sections[0] if len(sections) == 1 else None)
        if section is None:
            raise SecretsError(f"secrets file {p}: several sections and no [default]: {', '.join(sections)}")
        data = dict(parser[section])
    else:
        try:
            data = yaml.safe_load(text)  # safe loader only: a secrets file cannot run code
        except yaml.YAMLError:
            raise SecretsError(f"secrets file {p}: not valid YAML or INI") from None
    if not isinstance(data, dict):
        raise SecretsError(f"secrets file {p}: expected a mapping of NAME: value")
    out: dict[str, str] = {}
    for key, value in data.items():
        name = str(key).strip()
        if not _NAME.match(name):
            raise SecretsError(f"secrets file {p}: {name!r} is not a valid environment variable name")
        if value is None or isinstance(value, (dict, list)):
            raise SecretsError(f"secrets file {p}: {name} must be a plain value")
        out[name.upper()] = str(value)
    return out


def check_permissions(path: str | os.PathLike) -> Optional[str]:
    """A warning when the file is readable by group or others (like ssh, but not fatal)."""
    try:
        mode = Path(path).expanduser().stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return f"secrets file {path} is readable by other users; chmod 600 it"
    return None


def apply_secrets_file(path: Optional[str]) -> list[str]:
    """Put the file's keys into ``os.environ`` (already-set variables win); returns the names set."""
    if not path:
        return []
    applied = []
    for name, value in read_secrets_file(path).items():
        if name not in os.environ:
            os.environ[name] = value
            applied.append(name)
    return applied


def secret_values(extra_files: tuple[str, ...] = ()) -> set[str]:
    """Values that must never be written anywhere: credential-like env vars and file values."""
    values = {v for k, v in os.environ.items() if _looks_secret(k) and len(v) >= 6}
    for f in extra_files:
        try:
            values.update(v for v in read_secrets_file(f).values() if len(v) >= 6)
        except SecretsError:
            pass
    return values


_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|CREDENTIAL|PRIVATE_KEY|API_KEY|ACCESS_KEY|SESSION", re.IGNORECASE)


def _looks_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


# Credentials recognised by their shape, wherever they come from: AWS access key ids (long-term
# AKIA..., temporary ASIA... and the other IAM prefixes), a value given to a secret-key name, and
# a 40-character secret access key (mixed case and a digit, '/' or '+': a hex digest is not one).
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA)[A-Z0-9]{16}\b")
_SECRET_ASSIGNMENT = re.compile(r"(?i)(secret_?access_?key|secret_?key|password|passwd)(['\"]?\s*[=:]\s*['\"]?)([^\s'\",;]+)")
_AWS_SECRET_KEY = re.compile(r"(?<![A-Za-z0-9/+])(?=[A-Za-z0-9/+]*[A-Z])(?=[A-Za-z0-9/+]*[a-z])"
                             r"(?=[A-Za-z0-9/+]*[0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")


def redact(text: str, values: set[str]) -> str:
    """``text`` with each of ``values``, and anything shaped like an AWS key id or secret key, as ``***``."""
    for v in sorted(values, key=len, reverse=True):
        text = text.replace(v, "***")
    text = _AWS_KEY_ID.sub("***", text)
    text = _SECRET_ASSIGNMENT.sub(lambda m: m.group(1) + m.group(2) + "***", text)
    return _AWS_SECRET_KEY.sub("***", text)


# -- a database URL's password (search.optuna_storage) ------------------------------------------

OPTUNA_PASSWORD_ENV = "GENSWEEP_OPTUNA_PASSWORD"
_PASSWORD_PARAM = re.compile(r"(?:^|[&;])(?:password|passwd|pwd)=", re.IGNORECASE)


def url_password_problem(url: str) -> Optional[str]:
    """Why a storage URL cannot be written in a spec (it holds a password), or None; never echoes it."""
    parts = urlsplit(url)
    if parts.password is None and not _PASSWORD_PARAM.search(parts.query):
        return None
    return ("the URL holds a password, and credentials never go in a spec: remove it from the URL and put it in"
            f" the secrets file (data.storage.secrets_file) as {OPTUNA_PASSWORD_ENV.lower()}: ..., or set the"
            f" environment variable {OPTUNA_PASSWORD_ENV}; gensweep adds it when it connects")


def _with_netloc(url: str, password: Optional[str]) -> str:
    parts = urlsplit(url)
    if parts.username is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = parts.netloc.rsplit("@", 1)[0].split(":", 1)[0]
    userinfo = user if password is None else f"{user}:{quote(password, safe='')}"
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))


def with_password(url: str) -> str:
    """``url`` with the password of ``$GENSWEEP_OPTUNA_PASSWORD`` (a URL naming a user and no password)."""
    password = os.environ.get(OPTUNA_PASSWORD_ENV)
    if not password or urlsplit(url).password is not None:
        return url
    return _with_netloc(url, password)


def without_password(url: str) -> str:
    """``url`` without its password (the user stays): what may be pickled, logged or saved."""
    return _with_netloc(url, None) if urlsplit(url).password is not None else url


# The AWS credential variables Ray Tune copies from the driver into every trial's runtime_env.
CREDENTIAL_ENV_VARS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN", "AWS_SESSION_TOKEN"})


def keep_credentials_out_of_ray() -> None:
    """Stop Ray Tune from copying credentials into trial actors' runtime envs.

    Tune puts ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` of the driver
    into each trial actor's ``runtime_env["env_vars"]``; Ray then writes runtime envs in clear text
    to ``runtime_env_agent.log`` and serves them through the dashboard and state API. Without
    that copy, trial processes find credentials as every other process does: a local instance's
    workers inherit the driver's environment (set before Ray starts), cluster nodes use their
    own environment, profile or role, and the secrets file is read by path.
    """
    try:
        from ray.tune.execution import class_cache
    except ImportError:  # pragma: no cover - a Ray without this module copies nothing
        return
    names = getattr(class_cache, "ENV_VARS_TO_PROPAGATE", None)
    if isinstance(names, (set, frozenset)):
        class_cache.ENV_VARS_TO_PROPAGATE = {n for n in names if n not in CREDENTIAL_ENV_VARS and not _looks_secret(n)}


def refuse_password(url: Optional[str]) -> Optional[str]:
    """A spec validator: ``url`` unchanged, or ValueError when it holds a password."""
    problem = url_password_problem(url) if isinstance(url, str) else None
    if problem:
        raise ValueError(problem)
    return url
