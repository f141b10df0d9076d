"""Stage 3, the lab: the models every chapter builds on, each a cached stage of the store.

``world -> tokenizer -> base -> safe``, and the oracle (pretrained without the hazardous documents).

* :mod:`~safetygap.lab.configs`: the typed configs of the stages (they nest, so a key covers a history);
* :mod:`~safetygap.lab.data`: the data recipes (pretraining mixture, safety-training mixture);
* :mod:`~safetygap.lab.stages`: the stages themselves, returning :class:`~safetygap.lab.stages.Trained` models;
* :mod:`~safetygap.lab.anatomy`: measurements of where safety training sits in a model;
* :mod:`~safetygap.lab.preference`: a second safety method, preference optimisation (DPO) after safety SFT;
* :mod:`~safetygap.lab.openings`: a control, safety SFT whose refusals open in four ways instead of one.
"""
