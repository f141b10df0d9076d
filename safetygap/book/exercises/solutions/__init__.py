"""Reference solutions of the graded exercises, one module per chapter (``ch01``, ``ch02``, ``ch03``, ``ch06``): each function
has the signature the chapter gives and passes its check in :mod:`~safetygap.book.exercises.check`."""
