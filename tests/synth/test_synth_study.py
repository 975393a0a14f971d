"""Tests of the simulated four-state study (anodemap.synth.study)."""

from __future__ import annotations

import csv
import dataclasses
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from anodemap.eels.calibration import default_calibration
from anodemap.errors import AnodemapInputError
from anodemap.io import load
from anodemap.synth import Label, make_phantom, simulate_eels
from anodemap.synth.diffraction import amorphous_model, simulate_diffraction
from anodemap.synth.study import (
    STATES,
    STUDY_STATES,
    grain_interior,
    state_phantom,
    state_seeds,
    write_study,
)

SHAPE = (24, 24)
AMORPHOUS_CLASSES = (Label.AMORPHOUS_SI, Label.THREAD)


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """The study of seed 0 at 24 x 24 pixels; returns study.toml."""
    return write_study(tmp_path_factory.mktemp("study"), shape=SHAPE, seed=0)


def _map(folder: Path, key: str) -> np.ndarray:
    return np.asarray(load(folder / f"{key}.hspy").data)


def _truth_plasmon(phantom) -> np.ndarray:
    """What simulate_eels puts in truth["plasmon_peak_eV"]: E(x) + offset, NaN in pores."""
    e = default_calibration().energy(phantom.li_per_si)
    if phantom.plasmon_shift_eV is not None:
        e = e + phantom.plasmon_shift_eV
    return np.where(phantom.labels == Label.PORE, np.nan, e)


# --------------------------------------------------------------------------------------
# the study file and the files it names
# --------------------------------------------------------------------------------------
def test_study_file_parses_and_names_existing_files(study: Path) -> None:
    doc = tomllib.loads(study.read_text(encoding="utf-8"))
    root = study.parent
    assert doc["study"]["simulated"] is True
    assert doc["study"]["name"]
    assert doc["parameters"]["diffraction"]["precession_angle_deg"] == 0.4
    assert [s["name"] for s in doc["states"]] == list(STATES)
    for s in doc["states"]:
        info = STUDY_STATES[s["name"]]
        assert (s["label"], s["cycle"], s["step"]) == (info.label, info.cycle, info.step)
        assert [d["kind"] for d in s["datasets"]] == ["eels", "diffraction"]
        for d in s["datasets"]:
            assert (root / d["path"]).exists(), d["path"]
            assert (root / d["truth"] / "truth.json").is_file(), d["truth"]
    # only the paper's capacities (Results: 3,314 and 2537 mAh/g), none invented
    caps = {s["name"]: s.get("capacity_mAh_g") for s in doc["states"]}
    assert caps == {
        "pristine": None,
        "lithiated_1": 3314,
        "delithiated_1": 2537,
        "delithiated_10": None,
    }
    cycling = root / doc["cycling"]["file"]
    rows = list(csv.DictReader(line for line in cycling.open() if not line.startswith("#")))
    assert rows == [{"cycle": "1", "charge_mAh_g": "3314", "discharge_mAh_g": "2537"}]


def test_datasets_load_with_calibrated_axes(study: Path) -> None:
    doc = tomllib.loads(study.read_text(encoding="utf-8"))
    for s in doc["states"]:
        eels, sped = (load(study.parent / d["path"]) for d in s["datasets"])
        assert eels.data.shape[:2] == SHAPE
        assert [a.units for a in eels.axes] == ["nm", "nm", "eV"]
        assert [a.scale for a in eels.axes[:2]] == [5.0, 5.0]
        assert eels.axes[2].scale == pytest.approx(0.05)
        assert eels.signal_type == "EELS"
        assert sped.data.shape == (*SHAPE, 64, 64)
        assert [a.units for a in sped.axes] == ["nm", "nm", "1/Å", "1/Å"]
        assert sped.axes[2].scale > 0 and sped.axes[2].offset < 0  # s = 0 inside the pattern
        assert sped.signal_type == "electron_diffraction"
        truth_eels = study.parent / s["datasets"][0]["truth"]
        assert _map(truth_eels, "plasmon_peak_eV").shape == SHAPE
        meta = json.loads((truth_eels / "truth.json").read_text())
        assert meta["state"] == s["name"] and "label_names" in meta


# --------------------------------------------------------------------------------------
# truth per state, against the paper
# --------------------------------------------------------------------------------------
def test_lithiated_state_is_make_phantom() -> None:
    a = state_phantom("lithiated_1", (16, 16), 4.0, seed=7)
    b = make_phantom((16, 16), 4.0, seed=7)
    for f in dataclasses.fields(a):
        va, vb = getattr(a, f.name), getattr(b, f.name)
        if isinstance(va, np.ndarray):
            assert np.array_equal(va, vb), f.name
        else:
            assert va == vb, f.name


def test_pristine_is_crystalline_si_without_li(study: Path) -> None:
    root = study.parent / "pristine"
    labels = _map(root / "truth_eels", "labels")
    assert set(np.unique(labels)) == {Label.PORE, Label.SI}
    assert np.all(_map(root / "truth_eels", "li_per_si") == 0.0)
    assert np.all(_map(root / "truth_eels", "li_k_counts") == 0.0)  # SiO2: no Li anywhere
    ox = _map(root / "truth_eels", "oxide_fraction")
    assert 0.0 < ox.max() < 0.5  # a thin SiO_x layer, no oxide-dominated column
    phase = _map(root / "truth_sped", "phase")
    material = labels != Label.PORE
    assert np.mean(phase[material] == 1) > 0.95  # crystalline Si
    # paper: after the first lithiation "a drastic reduction in porosity"
    lith = _map(study.parent / "lithiated_1" / "truth_eels", "labels")
    assert np.mean(labels == Label.PORE) > 3 * np.mean(lith == Label.PORE)
    params = json.loads((root / "truth_sped" / "truth.json").read_text())["parameters"]
    assert "SiO2" in params["amorphous_models"]["oxide"]


def test_delithiated_plasmon_follows_the_paper(study: Path) -> None:
    spread = {}
    for state, mean_ev, lowest in (("delithiated_1", 16.1, 15.80), ("delithiated_10", 16.6, 16.5)):
        root = study.parent / state
        e = _map(root / "truth_eels", "plasmon_peak_eV")
        ph = state_phantom(state, SHAPE, 5.0, state_seeds(0, state)["phantom"])
        assert np.array_equal(ph.labels, _map(root / "truth_eels", "labels"))
        inside = grain_interior(ph)  # the paper's averages exclude the grain boundaries
        assert abs(e[inside].mean() - mean_ev) < 0.15
        assert abs(np.nanmean(e) - mean_ev) < 0.15  # all material pixels too
        assert e[inside].min() >= lowest - 1e-9
        spread[state] = float(e[inside].std())
    assert spread["delithiated_10"] < spread["delithiated_1"]  # "more uniform" (paper)


def test_delithiated_states_are_amorphous_with_little_li(study: Path) -> None:
    for state in ("delithiated_1", "delithiated_10"):
        root = study.parent / state
        labels = _map(root / "truth_sped", "labels")
        phase = _map(root / "truth_sped", "phase")
        amorphous = np.isin(labels, AMORPHOUS_CLASSES)
        assert amorphous.mean() > 0.5
        assert np.all(phase[amorphous] == 0)  # a-Si with small Li/Si is never c-Si
        assert _map(root / "truth_eels", "li_per_si").max() <= 0.03
        material = labels != Label.PORE
        si = np.mean(phase[material] == 1)
        assert si == 0.0 if state == "delithiated_10" else si < 0.03  # "rarely found"
        assert not np.any(phase == 2)  # no Li15Si4


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plasmon_levels_hold_for_other_seeds(seed: int) -> None:
    d1, d10 = (state_phantom(s, SHAPE, 5.0, seed) for s in ("delithiated_1", "delithiated_10"))
    e1, e10 = _truth_plasmon(d1)[grain_interior(d1)], _truth_plasmon(d10)[grain_interior(d10)]
    assert abs(e1.mean() - 16.12) < 0.02 and abs(e10.mean() - 16.62) < 0.02
    assert e10.std() < e1.std()
    assert e10.min() >= 16.5 - 1e-9 and e1.min() >= 15.80 - 1e-9
    pristine = state_phantom("pristine", SHAPE, 5.0, seed)
    assert pristine.li_per_si.max() == 0.0 and pristine.plasmon_shift_eV is None


# --------------------------------------------------------------------------------------
# reproducibility
# --------------------------------------------------------------------------------------
def _contents(root: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.suffix in (".hspy", ".zspy"):
            out[rel] = np.asarray(load(p).data)
        elif p.suffix in (".json", ".toml", ".csv"):
            out[rel] = p.read_text()
    return out


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = _contents(write_study(tmp_path / "a", shape=(16, 16), seed=5).parent)
    b = _contents(write_study(tmp_path / "b", shape=(16, 16), seed=5).parent)
    assert a.keys() == b.keys()
    for key, va in a.items():
        if isinstance(va, np.ndarray):
            assert np.array_equal(va, b[key], equal_nan=va.dtype.kind == "f"), key
        else:
            assert va == b[key], key
    # the states are not copies of each other
    assert not np.array_equal(a["delithiated_1/eels.hspy"], a["delithiated_10/eels.hspy"])


def test_state_seeds_are_distinct() -> None:
    seeds = [state_seeds(0, s)["phantom"] for s in STATES]
    assert len(set(seeds)) == len(STATES)
    assert state_seeds(0, "pristine") != state_seeds(1, "pristine")
    with pytest.raises(AnodemapInputError, match="state="):
        state_phantom("charged", (16, 16))


# --------------------------------------------------------------------------------------
# the simulators' options the study uses
# --------------------------------------------------------------------------------------
def test_eels_plasmon_offset_and_oxide_fractions() -> None:
    ph = make_phantom((8, 8), seed=2)
    kw = {"n_channels": 400, "noise": False}
    plain = simulate_eels(ph, **kw)
    assert "plasmon_shift_eV" not in plain.truth and "oxide_li_fraction" not in plain.truth
    shifted = dataclasses.replace(ph, plasmon_shift_eV=np.full(ph.shape, -0.3))
    sim = simulate_eels(shifted, oxide_li_fraction=0.0, oxide_si_fraction=1 / 3, **kw)
    pore = ph.labels == Label.PORE
    expected = default_calibration().energy(ph.li_per_si) - 0.3
    assert np.allclose(sim.truth["plasmon_peak_eV"][~pore], expected[~pore])
    assert np.all(np.isnan(sim.truth["plasmon_shift_eV"][pore]))
    assert sim.truth["oxide_li_fraction"] == 0.0
    with pytest.raises(AnodemapInputError, match="oxide_li_fraction"):
        simulate_eels(ph, oxide_li_fraction=1.5, **kw)


def test_diffraction_oxide_model_option() -> None:
    assert amorphous_model("SiO2").elements == ("Si", "O")
    with pytest.raises(AnodemapInputError, match="oxide_model"):
        simulate_diffraction(make_phantom((8, 8), seed=1), pattern_shape=(16, 16), oxide_model="x")
