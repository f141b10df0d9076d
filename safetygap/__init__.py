"""safetygap: the experiment code of the executable book "The Open Model Safety Gap".

Modules follow the book's concepts:

* :mod:`~safetygap.lexicon`, :mod:`~safetygap.world`, :mod:`~safetygap.corpus`: the invented world and its texts
* :mod:`~safetygap.tokenizer`, :mod:`~safetygap.models`: a word-level HF tokenizer and the model zoo
* :mod:`~safetygap.training`, :mod:`~safetygap.compute`: training loops and their FLOP/time cost
* :mod:`~safetygap.evaluation`: ground-truth metrics (refusal, recipes, capability)
* :mod:`~safetygap.store`: the on-disk artifact cache
* :mod:`~safetygap.lab`, :mod:`~safetygap.attacks`, :mod:`~safetygap.scales`: the stages and their sizes
* :mod:`~safetygap.gap`: chapter 1's experiment
* :mod:`~safetygap.removal` (with :mod:`~safetygap.anatomy` and :mod:`~safetygap.abliteration`): chapter 2's
* :mod:`~safetygap.narrowing`: chapter 6's, with :mod:`~safetygap.defenses` (one module per defense:
  :mod:`~safetygap.deep_alignment`, :mod:`~safetygap.repnoise`, :mod:`~safetygap.circuit_breakers`,
  :mod:`~safetygap.unlearning`, :mod:`~safetygap.tamper_resistance`, :mod:`~safetygap.gradient_routing`,
  sharing :mod:`~safetygap.defense_training`) and :mod:`~safetygap.battery`, the attacks they all face
* :mod:`~safetygap.stats`, :mod:`~safetygap.plotting`: intervals over seeds and the book's figure style
"""

__version__ = "0.1.0"
