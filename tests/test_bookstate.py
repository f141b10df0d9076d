"""make book re-executes every chapter when the package or data change, and nothing otherwise."""

from __future__ import annotations

from safetygap.book import bookstate


def test_a_changed_input_clears_the_execution_cache_and_sphinx_environment(tmp_path):
    (tmp_path / "safetygap").mkdir()
    (tmp_path / "safetygap" / "runner.py").write_text("MODELS = ('base',)\n")
    caches = [tmp_path / bookstate.JUPYTER_CACHE, tmp_path / bookstate.SPHINX_ENVIRONMENT]

    def build() -> None:
        for cache in caches:
            cache.mkdir(parents=True, exist_ok=True)

    assert bookstate.refresh(tmp_path)  # first build: nothing recorded yet
    build()
    assert not bookstate.refresh(tmp_path) and all(c.exists() for c in caches)  # nothing changed: keep both
    (tmp_path / "safetygap" / "runner.py").write_text("MODELS = ('safe',)\n")
    assert bookstate.refresh(tmp_path) and not any(c.exists() for c in caches)
