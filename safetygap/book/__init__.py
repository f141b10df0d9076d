"""Stage 5, the book: sizes and seeds, one runner per chapter, statistics, figures and the build state.

* :mod:`~safetygap.book.scales`: the book's size and the reduced size the tests use, and the seeds;
* :mod:`~safetygap.book.ch1_gap`, :mod:`~safetygap.book.ch2_anatomy`, :mod:`~safetygap.book.ch6_defenses`:
  one runner per chapter, building every seed's artifacts (in parallel) and returning tidy tables;
* :mod:`~safetygap.book.stats`, :mod:`~safetygap.book.plotting`: intervals over seeds, the book's figure style;
* :mod:`~safetygap.book.bookstate`: clears Jupyter Book's execution cache when the package or data change.

Nothing in the lower stages imports the book, so editing a runner, a label or a plot retrains nothing.
"""
