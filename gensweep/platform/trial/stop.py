"""The stop request a sweep's driver publishes and its trials read (Ray's GCS key-value store).

The driver (:mod:`gensweep.platform.sweep.interrupt`) puts the key on its first stop signal; each
trial's context polls it (:meth:`PlatformContext.checkpoint_due`) and answers once with a checkpoint.
"""
from __future__ import annotations

from typing import Optional

KV_NAMESPACE = "gensweep"
STOP_FIELD = "stop_request"  # in the report of the checkpoint a trial made for a stop request: its token


def stop_key(experiment: str) -> bytes:
    return f"stop/{experiment}".encode()


def stop_requested(experiment: str) -> Optional[str]:
    """The pending stop request of ``experiment`` (an opaque token), or None."""
    from ray.experimental import internal_kv

    if not internal_kv._internal_kv_initialized():
        return None
    value = internal_kv._internal_kv_get(stop_key(experiment), namespace=KV_NAMESPACE)
    return value.decode() if value else None


def request_stop(experiment: str, token: str) -> None:
    from ray.experimental import internal_kv

    internal_kv._internal_kv_put(stop_key(experiment), token.encode(), overwrite=True, namespace=KV_NAMESPACE)


def clear_stop(experiment: str) -> None:
    from ray.experimental import internal_kv

    if internal_kv._internal_kv_initialized():
        internal_kv._internal_kv_del(stop_key(experiment), namespace=KV_NAMESPACE)
