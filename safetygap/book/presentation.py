"""How the book shows a table: with a caption, human column names and a fixed number of decimals.

Every table a chapter displays goes through :func:`table` (``tests/test_presentation.py`` checks
the chapter sources for it), so no reader meets a raw column name like ``edc_sealed`` or a table
without a sentence saying what it is.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from pandas.io.formats.style import Styler


def table(
    frame: pd.DataFrame | pd.Series,
    caption: str,
    *,
    columns: Mapping[str, str] | None = None,
    index: bool = True,
    precision: int = 2,
    formats: Mapping[str, str] | None = None,
) -> Styler:
    """``frame`` as a captioned table: ``columns`` renames (and keeps only) the named columns, in order.

    ``index=False`` hides the row labels; ``precision`` is the number of decimals of every float
    that ``formats`` (column -> format string, by the shown name) does not format otherwise.
    """
    if not caption.strip():
        raise ValueError("a table needs a caption: say what the reader is looking at")
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    if columns is not None:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise ValueError(f"columns {missing} are not in the table; its columns are {list(frame.columns)}")
        frame = frame[list(columns)].rename(columns=dict(columns))
    styler = frame.style.set_caption(caption).format(precision=precision, na_rep="–")
    if formats:
        unknown = [c for c in formats if c not in frame.columns]
        if unknown:
            raise ValueError(f"formats name columns {unknown} that are not shown; shown: {list(frame.columns)}")
        styler = styler.format(dict(formats), na_rep="–")
    return styler if index else styler.hide(axis="index")
