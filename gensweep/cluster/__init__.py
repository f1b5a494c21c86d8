"""Running gensweep on a Ray cluster: job submission (:mod:`.jobs`), cluster templates
(:mod:`.templates`), trial concurrency from cluster resources (:mod:`.resources`) and a
multi-node Ray cluster on one machine for tests and demos (:mod:`.localcluster`)."""
