"""Stage 4b, the defenses of chapter 6: one module each, a registry, and what they share.

:mod:`~safetygap.defenses.registry` lists them (key = module = config name) and
builds any of them with :func:`~safetygap.defenses.registry.defended_model`;
:mod:`~safetygap.defenses.shared` holds the defender's data and the loss
pieces they share. Defenses import the lab and the core, never the attacks.
"""
