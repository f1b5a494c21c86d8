"""Where things are kept: URIs and filesystems, retries, artifacts, Tune/Train storage, secrets,
and the one layout of paths under a results root.

* :mod:`.uris`         -- local paths and ``s3://`` URIs as pyarrow/fsspec filesystems (``StorageOptions``)
* :mod:`.retry`        -- exponential backoff with jitter under a deadline (``RetryPolicy``)
* :mod:`.artifacts`    -- put/get of artifact bytes, retried through an outage
* :mod:`.tune_storage` -- Tune/Train ``storage_path`` and a retrying pyarrow filesystem
* :mod:`.secrets`      -- credentials from the environment, a profile or a secrets file
"""
