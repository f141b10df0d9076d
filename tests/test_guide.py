"""Reading and running times (safetygap.book.guide): every chapter's running time is measured, the cold one read from
the benchmark's output, and a page the benchmark did not run is an error that names what was measured."""

from __future__ import annotations

import json

import pytest

from safetygap.book import guide


def test_every_page_the_course_lists_has_a_measured_running_time():
    for page in guide.WARM_MINUTES:
        times = guide.run_time(page)
        assert 0 < times.warm <= times.cold, page


def test_the_cold_time_is_the_benchmark_s_rounded_up(tmp_path):
    benchmark = tmp_path / "build.json"
    benchmark.write_text(json.dumps({"notebooks": [{"notebook": "chapters/02_anatomy.md", "execution_seconds": 121.0}]}))
    assert guide.run_time("02_anatomy", benchmark) == guide.RunTime(cold=3, warm=guide.WARM_MINUTES["02_anatomy"])


def test_a_page_the_benchmark_did_not_run_is_an_error(tmp_path):
    benchmark = tmp_path / "build.json"
    benchmark.write_text(json.dumps({"notebooks": [{"notebook": "chapters/02_anatomy.md", "execution_seconds": 121.0}]}))
    with pytest.raises(ValueError, match="no measured running time for '03_scale'.*benchmarked: \\['02_anatomy'\\]"):
        guide.run_time("03_scale", benchmark)
