"""Stage 4a, the attacks: what anyone holding the weights can do.

* :mod:`~safetygap.attacks.finetuning`: harmful, benign and identity-shift fine-tuning, full and LoRA;
* :mod:`~safetygap.attacks.directions`: difference-of-means refusal directions and the edits that remove or add them;
* :mod:`~safetygap.attacks.selection`: chapter 2's rule that picks a refusal direction among the candidates;
* :mod:`~safetygap.attacks.abliteration`: the abliteration experiment (select, remove, add, evaluate);
* :mod:`~safetygap.attacks.soft_prompt`: the embedding-space attack, a universal soft prompt;
* :mod:`~safetygap.attacks.battery`: every attack against one model, as chapter 6 runs it.

Attacks import the lab and the core, never the defenses.
"""
