"""Stage 2, the core: what every experiment is made of, independent of any chapter.

* :mod:`~safetygap.core.models`: the model zoo (transformers configs, random init);
* :mod:`~safetygap.core.training`: the one training loop, with a per-step loss hook;
* :mod:`~safetygap.core.compute`: FLOPs and wall time of a run;
* :mod:`~safetygap.core.hooks`: named hook points for reading and editing the residual stream;
* :mod:`~safetygap.core.scoring`: the one scorer of replies (refusal, recipe slots, dangerous capability);
* :mod:`~safetygap.core.evaluation`: greedy generation and the metric suites built on the scorer;
* :mod:`~safetygap.core.store`, :mod:`~safetygap.core.codehash`: the artifact cache, keyed by config and code;
* :mod:`~safetygap.core.timing`: where the build's time goes (per-artifact build records);
* :mod:`~safetygap.core.parallel`: independent jobs side by side on a Dask cluster (local by default).

Imports run one way through the package: world -> core -> lab -> attacks | defenses -> book.
"""
