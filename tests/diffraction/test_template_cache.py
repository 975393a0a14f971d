"""The on-disk cache of prepared template libraries (anodemap.diffraction._cache)."""

from __future__ import annotations

import numpy as np
import pytest

import anodemap.diffraction.templates as templates_module
from anodemap.diffraction import _cache
from anodemap.diffraction.pipeline import DiffractionParameters, analyse_diffraction


@pytest.fixture(scope="module")
def small():
    from anodemap.synth import make_phantom
    from anodemap.synth.diffraction import simulate_diffraction, to_dataset

    return to_dataset(simulate_diffraction(make_phantom((12, 12), seed=1), seed=1))


def _maps(result):
    return {k: result.maps[k] for k in ("phase", "correlation", "euler", "reliability")}


def test_libraries_are_built_once_and_read_back_the_same(small, tmp_path, monkeypatch):
    monkeypatch.setenv("ANODEMAP_CACHE_DIR", str(tmp_path / "cache"))
    p = DiffractionParameters(step_deg=3.0, refine_step_deg=2.0)
    first = analyse_diffraction(small, p, progress=False)
    files = sorted((tmp_path / "cache" / "templates").glob("*.pkl"))
    assert len(files) == 2  # the phases' libraries and the refinement's
    assert not list((tmp_path / "cache" / "templates").glob(".*partial"))

    def no_build(*args, **kwargs):
        raise AssertionError("the libraries were built again")

    monkeypatch.setattr(templates_module, "generate_templates", no_build)
    again = analyse_diffraction(small, p, progress=False)
    for key, value in _maps(first).items():
        np.testing.assert_array_equal(_maps(again)[key], value, err_msg=key)
    # not asked for: built (and fails here), files left alone
    with pytest.raises(AssertionError, match="built again"):
        analyse_diffraction(
            small, DiffractionParameters(step_deg=3.0, template_cache=False), progress=False
        )
    assert sorted((tmp_path / "cache" / "templates").glob("*.pkl")) == files


def test_a_damaged_file_is_built_again_and_keys_follow_what_the_libraries_are_made_of(
    small, tmp_path, monkeypatch
):
    monkeypatch.setenv("ANODEMAP_CACHE_DIR", str(tmp_path))
    p = DiffractionParameters(step_deg=3.0, refine_step_deg=None)
    ref = analyse_diffraction(small, p, progress=False)
    (path,) = (tmp_path / "templates").glob("*.pkl")
    path.write_bytes(b"truncated")
    again = analyse_diffraction(small, p, progress=False)
    np.testing.assert_array_equal(again.maps["phase"], ref.maps["phase"])
    assert path.stat().st_size > 1000  # written again, whole
    # another step, another precession: other keys
    analyse_diffraction(
        small, DiffractionParameters(step_deg=4.0, refine_step_deg=None), progress=False
    )
    analyse_diffraction(
        small,
        DiffractionParameters(step_deg=3.0, refine_step_deg=None, precession_angle_deg=1.0),
        progress=False,
    )
    assert len(list((tmp_path / "templates").glob("*.pkl"))) == 3
    # a changed structure is another key, however it was used before
    from anodemap.diffraction.crystal import load_phase
    from anodemap.diffraction.libraries import structure_key as _structure_key

    si = load_phase("Si")
    assert _structure_key(si) != _structure_key(si.with_cell(5.5))
    before = _structure_key(si)
    si.reflections(s_max=1.0)  # fills the crystal's own caches
    assert _structure_key(si) == before


def test_cache_off(small, tmp_path, monkeypatch):
    monkeypatch.setenv("ANODEMAP_CACHE_DIR", "off")
    assert _cache.cache_dir() is None
    monkeypatch.setenv("ANODEMAP_CACHE_DIR", str(tmp_path / "c"))
    assert _cache.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("ANODEMAP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _cache.cache_dir() == tmp_path / "xdg" / "anodemap"


def test_the_key_follows_the_code_that_builds_the_libraries_not_the_driver(tmp_path, monkeypatch):
    """An edit of the analysis's driver (pipeline.py) keeps the cached libraries; an
    edit of the template simulation makes them stale (issue 16)."""
    from anodemap.diffraction import _cache, pipeline, templates

    before = _cache._source_digest()
    edited = tmp_path / "edited.py"
    edited.write_text("# an edited driver\n")
    monkeypatch.setattr(pipeline, "__file__", str(edited))
    assert _cache._source_digest() == before
    monkeypatch.setattr(templates, "__file__", str(edited))
    assert _cache._source_digest() != before
