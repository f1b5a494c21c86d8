"""The Ray token a job client sends, found the way Ray itself looks for it.

Ray (>= 2.52) protects the dashboard and Jobs API with a bearer token when the cluster runs
with ``RAY_AUTH_MODE=token``. The client looks for the token in this order:

1. ``--token-file PATH`` (gensweep option);
2. ``RAY_AUTH_TOKEN`` (the token itself);
3. ``RAY_AUTH_TOKEN_PATH`` (a file holding it);
4. ``~/.ray/auth_token`` (what a local ``ray start``/``ray.init`` writes, and what
   ``ray get-auth-token --generate`` creates) - sent only to a loopback address, or when
   ``RAY_AUTH_MODE=token`` says the user wants it sent.

The token goes in the ``Authorization: Bearer`` header of the HTTP requests only; it is never
written into a job's runtime env, entrypoint or metadata.
"""
from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse


class TokenError(ValueError):
    """A token source that was named but cannot be read."""


def default_token_path() -> Path:
    return Path.home() / ".ray" / "auth_token"


def _read(path: Path, what: str) -> str:
    try:
        token = path.expanduser().read_text().strip()
    except OSError as e:
        raise TokenError(f"{what} {path}: cannot be read ({e.strerror})") from None
    if not token:
        raise TokenError(f"{what} {path} is empty")
    return token


def is_loopback(address: Optional[str]) -> bool:
    if not address:
        return False
    host = urlparse(address if "://" in address else f"http://{address}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_token(address: Optional[str], token_file: Optional[str] = None) -> Optional[str]:
    """The token to send to ``address``, or None to send none."""
    if token_file:
        return _read(Path(token_file), "--token-file")
    env_token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if env_token:
        return env_token
    env_path = os.environ.get("RAY_AUTH_TOKEN_PATH", "").strip()
    if env_path:
        return _read(Path(env_path), "RAY_AUTH_TOKEN_PATH")
    default = default_token_path()
    wanted = os.environ.get("RAY_AUTH_MODE", "").lower() == "token" or is_loopback(address)
    if wanted and default.is_file():
        return _read(default, "token file")
    return None


def auth_headers(address: Optional[str], token_file: Optional[str] = None) -> dict[str, str]:
    token = resolve_token(address, token_file)
    return {"Authorization": f"Bearer {token}"} if token else {}


HOW_TO_AUTHENTICATE = (
    "the cluster requires a Ray auth token: on the head node run `ray get-auth-token`, then here "
    "`export RAY_AUTH_TOKEN=<token>` (or put it in a file and pass --token-file FILE / set "
    "RAY_AUTH_TOKEN_PATH). KubeRay: `kubectl get secret CLUSTER -o jsonpath='{.data.auth_token}' | base64 -d`."
)
