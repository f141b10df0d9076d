"""Stage 5, the book: sizes and seeds, one runner per chapter, statistics, figures and the build state.

* :mod:`~safetygap.book.scales`: the book's size and the reduced size the tests use, and the seeds;
* :mod:`~safetygap.book.ch1_gap`, :mod:`~safetygap.book.ch2_anatomy` (with :mod:`~safetygap.book.ch2_preference` and
  :mod:`~safetygap.book.ch2_openings`),
  :mod:`~safetygap.book.ch6_defenses`: one runner per chapter, building every seed's artifacts (in parallel) and
  returning tidy tables; :mod:`~safetygap.book.ch7_policy` and :mod:`~safetygap.book.ch8_living` read theirs;
* the claims of each chapter (``ch*_claims``, or ``claims`` in the chapter's module), the published figures and
  the tables that set them beside the book's (:mod:`~safetygap.book.published`, :mod:`~safetygap.book.comparisons`);
* :mod:`~safetygap.book.live`: the models exported for the live pages; :mod:`~safetygap.book.guide` and
  :mod:`~safetygap.book.presentation`: reading times, run times and captioned tables;
* :mod:`~safetygap.book.stats`, :mod:`~safetygap.book.plotting`: intervals over seeds, the book's figure style;
* :mod:`~safetygap.book.bookstate`: clears Jupyter Book's execution cache when the package or data change.

Nothing in the lower stages imports the book, so editing a runner, a label or a plot retrains nothing.
"""
