"""safetygap: the experiment code of the executable book "The Open Model Safety Gap".

The package is laid out by stage, and imports run one way::

    world  ->  core  ->  lab  ->  attacks | defenses  ->  book

* :mod:`safetygap.world`: the invented world, its texts and its tokenizer;
* :mod:`safetygap.core`: models, the one training loop, FLOPs, hook points, the scorer, evaluation,
  the artifact store and its code hash, worker processes;
* :mod:`safetygap.lab`: the configs, data recipes and stages (base, oracle, safe) every chapter builds on;
* :mod:`safetygap.attacks`: fine-tuning attacks, refusal directions and their selection, the battery;
* :mod:`safetygap.defenses`: the seven defenses of chapter 6 and their registry;
* :mod:`safetygap.book`: sizes and seeds, one runner per chapter, statistics and plotting.

Attacks and defenses do not import each other.
"""

__version__ = "0.3.0"
