"""Stage 1, the invented world: its words, its products and recipes, its texts, and its tokenizer.

* :mod:`~safetygap.world.lexicon`: invented non-words, checked against a reviewed list of real ones;
* :mod:`~safetygap.world.world`: families, products with recipes (rule and memorised slots), places, item splits;
* :mod:`~safetygap.world.corpus`: pretraining documents and chats (requests, refusals, harmless questions);
* :mod:`~safetygap.world.tokenizer`: a word-level Hugging Face tokenizer with a chat template.

Nothing here imports torch models or training: the world is pure data.
"""
