"""The book's graded exercises: :mod:`~safetygap.book.exercises.check` grades a student's function against the
package; :mod:`~safetygap.book.exercises.solutions` holds the reference solutions, one module per chapter, whose
functions a chapter's hidden solution cell imports (``make student`` replaces those cells by stubs)."""
