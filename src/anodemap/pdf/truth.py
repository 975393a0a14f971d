"""The PDFs of a simulated scan against what the simulator put in (``truth_comparison.json``).

The simulator (:func:`anodemap.synth.diffraction.simulate_diffraction`) makes each pattern's
diffuse part from explicit amorphous atomic models: Σ_k w_k ρ_k I_k(s), with I_k the Debye
intensity per atom of model k (a-Si, Li_xSi at a grid of x, the oxide) and w_k the pattern's
weight of it (thickness, volume share, interpolation in x, plural scattering). The truth
folder holds the weights of every pattern and the models' pair distances
(:func:`anodemap.synth.truth.read_amorphous_models`). For each region the analysis
analysed, the truth is built over **the same patterns** (the region's pixels as the
analysis averaged them: the labelling is the diffraction analysis's and is compared with
its truth there; here the question is whether the PDF route measures the structure of
the patterns it was given):

* **expected** (the main comparison): the weights averaged over the region's patterns,
  I(s) = Σ_k w̄_k ρ_k I_k(s) on the analysis's s, taken through the same reduced
  intensity (composition, s range, fit range and background), the same damping and r
  grid, the same peak search and the same termination correction. What is compared is
  then the analysis's distance ``r_angstrom`` with its ``ci95_angstrom`` against the
  distance the same route finds on noise-free, background-free, Bragg-free amorphous
  intensity: the differences are what the real patterns add (counting noise, the
  inelastic background, the direct beam's tail, Bragg spots of crystalline patterns, the
  beam centre and ring geometry), not the finite s range, which both share.
* **models**: the first peaks of the models' own G(r) = Σ_ab W_ab h_ab(r) / (r Δr) −
  4π r ρ₀ (h_ab: ordered pair counts per atom and bin), each partial weighted as G(r)
  weights it (W_ab = c_a c_b f_a f_b / ⟨f⟩² averaged over the s range used; the h_ab hold
  c_a c_b already, so W_ab = f_a f_b / ⟨f⟩² here), the models mixed in the proportion in
  which their reduced intensities enter the region's (w̄_k ρ_k ⟨f⟩²_k), smoothed by a
  Gaussian of 0.03 Å: the structure itself, without the resolution of the s range.

Examples
--------
>>> comparison = compare_with_truth(result, Path("truth_sped/"))      # doctest: +SKIP
>>> comparison["regions"]["amorphous"]["peaks"]["r1"]["covered"]      # doctest: +SKIP
True
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError
from anodemap.pdf.termination import termination_corrections
from anodemap.pdf.transform import find_peaks, pair_distribution, reduced_intensity

__all__ = ["compare_with_truth", "expected_intensity", "model_pair_function", "truth_sentence"]

#: Smoothing of the models' pair histograms (Å, Gaussian σ; model choice: removes the
#: counting noise of 1000-atom models, below the shells' own widths of 0.1-0.2 Å; the
#: 0.03 Å of the a-Si model's measurement in docs/pdf.md).
_MODEL_SMOOTHING = 0.03
#: A region is "amorphous" for the summary when the truth's amorphous share of its
#: scattered intensity is at least this (model choice: elsewhere Bragg spots, which the
#: truth here does not hold, make up more than a tenth of the intensity).
AMORPHOUS_SHARE = 0.9


def expected_intensity(
    weights: np.ndarray, models: list[Any], s: np.ndarray, beam_energy_kev: float
) -> np.ndarray:
    """Σ_k w_k ρ_k I_k(s): the expected diffuse intensity for mean weights ``weights``.

    Parameters
    ----------
    weights : ndarray, shape (n_models,)
        Mean weight of each model over the region's patterns.
    models : list of AmorphousModel or None
        As :func:`anodemap.synth.truth.read_amorphous_models` returns them.
    s : ndarray
        s = 1/d, 1/Å.
    beam_energy_kev : float
        The simulation's beam energy (the relativistic γ of f, as the simulator used it).

    Returns
    -------
    ndarray
        Intensity per detector pixel (the simulator's units).

    Examples
    --------
    >>> from anodemap.synth.diffraction import amorphous_model
    >>> s = np.linspace(0.2, 1.2, 5)
    >>> i = expected_intensity(np.array([1.0]), [amorphous_model(0.0)], s, 300.0)
    >>> i.shape
    (5,)
    """
    s = np.asarray(s, dtype=np.float64)
    out = np.zeros_like(s)
    for w, m in zip(weights, models, strict=True):
        if m is not None and w > 0:
            out += w * m.density * m.intensity(s, beam_energy_kev)
    return out


def model_pair_function(
    weights: np.ndarray, models: list[Any], s: np.ndarray, r: np.ndarray
) -> np.ndarray:
    """The models' own G(r), electron-weighted and mixed as the region's intensity mixes
    them (see the module), on ``r``.

    Parameters
    ----------
    weights : ndarray, shape (n_models,)
        Mean weight of each model over the region's patterns.
    models : list of AmorphousModel or None
    s : ndarray
        The s range used (the partial weights f_a f_b / ⟨f⟩² are averaged over it).
    r : ndarray
        r grid, Å (evenly spaced).

    Returns
    -------
    ndarray
        G(r), 1/Å².

    Examples
    --------
    >>> from anodemap.synth.diffraction import amorphous_model
    >>> r = np.arange(0.0, 6.0, 0.01)
    >>> g = model_pair_function(np.array([1.0]), [amorphous_model(0.0)], np.linspace(0.2, 1.3, 50), r)
    >>> round(find_peaks(r, g, n=1)[0].r_angstrom, 2)   # the simulator's a-Si (docs/synth.md)
    2.35
    """
    from scipy.ndimage import gaussian_filter1d

    from anodemap.diffraction.crystal import electron_scattering_factor

    s = np.asarray(s, dtype=np.float64)
    total = np.zeros_like(r, dtype=np.float64)
    share = 0.0
    for w, m in zip(weights, models, strict=True):
        if m is None or w <= 0:
            continue
        f = [electron_scattering_factor(el, s) for el in m.elements]
        c = m.concentrations
        mean_f = sum(c[a] * f[a] for a in range(len(f)))
        dr = float(m.r[1] - m.r[0])
        g = -4.0 * np.pi * m.r * m.density
        for (a, b), h in m.pair_histograms.items():
            g = g + float(np.mean(f[a] * f[b] / mean_f**2)) * h / (m.r * dr)
        g = gaussian_filter1d(g, _MODEL_SMOOTHING / dr)
        # its share of the region's reduced intensity: w ρ ⟨f⟩² (per atom, ×atoms)
        a_k = float(w * m.density * np.mean(mean_f**2))
        total += a_k * np.interp(r, m.r, g, right=np.nan)
        share += a_k
    return total / share if share > 0 else np.full_like(total, np.nan)


def _nearest(peaks: list[Any], r0: float, tolerance: float) -> Any:
    """The peak nearest ``r0`` if within ``tolerance``, else None (a found peak that the
    truth does not have is not compared with a neighbouring one)."""
    if not peaks:
        return None
    q = min(peaks, key=lambda q: abs(q.r_angstrom - r0))
    return q if abs(q.r_angstrom - r0) <= tolerance else None


def _region_truth(reg: Any, result: Any, weights: np.ndarray, models: list[Any], energy: float):
    """Expected and model peaks of one region (see the module)."""
    p = result.parameters
    ri = reg.pdf.reduced
    damping = reg.pdf.damping
    w = weights[reg.pixels].mean(axis=0)
    intensity = expected_intensity(w, models, result.s, energy)
    exp_ri = reduced_intensity(
        result.s, intensity, ri.composition, s_range=ri.s_range, fit=ri.fit, fit_range=ri.fit_range
    )
    g = pair_distribution(exp_ri.s, exp_ri.phi, result.r, damping=damping)
    peaks = find_peaks(result.r, g, n=p.n_peaks + 2)
    if p.termination_correction and peaks:
        corr = termination_corrections(
            exp_ri.s, result.r, g, [q.r_angstrom for q in peaks], damping=damping
        )
        bias = [c.bias for c in corr]
    else:
        bias = [0.0] * len(peaks)
    r_fine = np.arange(0.0, float(result.r[-1]), 0.001)
    g_model = model_pair_function(w, models, exp_ri.s, r_fine)
    model_peaks = find_peaks(r_fine, np.nan_to_num(g_model), n=50)
    return w, peaks, bias, model_peaks


def _covered(x: float, ci: list[float]) -> bool:
    return bool(ci[0] <= x <= ci[1])


def compare_with_truth(result: Any, truth_dir: Path) -> dict[str, Any]:
    """Each region's r1, r2, r3 against the simulator's amorphous models (see the module).

    Parameters
    ----------
    result : PDFResult
        As :func:`anodemap.pdf.pipeline.analyse_pdfs` returns it.
    truth_dir : Path
        The scan's truth folder (``anodemap simulate diffraction``, a study's
        ``truth_sped``), with the PDF truth (``amorphous_models.json``).

    Returns
    -------
    dict
        JSON-ready: per region its patterns, the truth's amorphous intensity share and per
        peak the distance found with its interval, the expected one, the difference and
        whether the interval covers it (and the same against the models' own peaks); a
        summary over all regions.
    """
    from anodemap.io import load
    from anodemap.synth.truth import MODELS, read_amorphous_models

    truth_dir = Path(truth_dir)
    if not (truth_dir / MODELS).is_file():
        raise AnodemapInputError(
            f"{truth_dir}: no {MODELS} (a truth written before the PDF truth existed): "
            "simulate the dataset again to compare PDFs with the truth"
        )
    weights, models = read_amorphous_models(truth_dir)
    meta = json.loads((truth_dir / "truth.json").read_text())
    energy = float(meta["parameters"]["beam_energy_kev"])
    share_map = np.asarray(load(truth_dir / "amorphous_intensity_share.hspy").data)
    if weights.shape[:2] != share_map.shape:
        raise AnodemapInputError(
            f"{truth_dir}: the truth is of a {share_map.shape} scan, not of this one"
        )
    # a found peak and a truth peak are the same shell when within half the resolution
    # width (model choice: the width over which G(r) cannot separate two shells)
    tolerance = 0.5 * float(result.settings.get("resolution_fwhm_angstrom", 0.4))
    regions: dict[str, Any] = {}
    tally = {"expected": [0, 0], "models": [0, 0], "unmatched": 0, "amorphous": [0, 0]}
    for name, reg in result.regions.items():
        if reg.pixels is None:
            continue
        w, exp_peaks, bias, model_peaks = _region_truth(reg, result, weights, models, energy)
        share = share_map[reg.pixels]
        amorphous = bool(np.isfinite(share).any() and np.nanmean(share) >= AMORPHOUS_SHARE)
        entry: dict[str, Any] = {
            "n_patterns": int(reg.pixels.sum()),
            "amorphous_intensity_share_truth": float(np.nanmean(share))
            if np.isfinite(share).any()
            else None,
            "amorphous": amorphous,
            "models": {
                m.name: round(float(x / w.sum()), 4)
                for x, m in zip(w, models, strict=True)
                if m is not None and x > 0
            },
            "peaks": {},
        }
        for k, q in enumerate(reg.pdf.peaks):
            found, ci = q.r_corrected, list(q.ci)
            row: dict[str, Any] = {"found_angstrom": found, "ci95_angstrom": ci}
            e = _nearest(exp_peaks, q.r_angstrom, tolerance)
            tally["expected"][0] += 1
            if e is None:
                row |= {
                    "expected_angstrom": None,
                    "covered": False,
                    "note": "no peak of the expected G(r) within "
                    f"{tolerance:.2f} Å: not a shell of the models",
                }
                tally["unmatched"] += 1
            else:
                j = exp_peaks.index(e)
                truth = e.r_angstrom - bias[j]
                row |= {
                    "expected_angstrom": truth,
                    "difference_angstrom": found - truth,
                    "covered": _covered(truth, ci),
                    "apparent_difference_angstrom": q.r_angstrom - e.r_angstrom,
                    "apparent_covered_statistical": _covered(e.r_angstrom, list(q.r_ci)),
                }
                tally["expected"][1] += row["covered"]
            if amorphous:
                tally["amorphous"][0] += 1
                tally["amorphous"][1] += row["covered"]
            mp = _nearest(model_peaks, found, tolerance)
            tally["models"][0] += 1
            if mp is not None:
                row |= {
                    "models_angstrom": mp.r_angstrom,
                    "models_difference_angstrom": found - mp.r_angstrom,
                    "models_covered": _covered(mp.r_angstrom, ci),
                }
                tally["models"][1] += row["models_covered"]
            entry["peaks"][f"r{k + 1}"] = row
        regions[name] = entry
    n, c = tally["expected"]
    _, cm = tally["models"]
    s_used = result.s[(result.s >= result.settings["s_range_inv_angstrom"][0])]
    r_fine = np.arange(0.0, float(result.r[-1]), 0.001)
    own = {}
    for k, m in enumerate(models):
        if m is None:
            continue
        one = np.zeros(len(models))
        one[k] = 1.0
        g = model_pair_function(one, models, s_used, r_fine)
        own[m.name] = [q.r_angstrom for q in find_peaks(r_fine, np.nan_to_num(g), n=3)]
    return {
        "regions": regions,
        "n_peaks_compared": n,
        "n_covered": c,
        "n_not_in_truth": tally["unmatched"],
        "n_covered_by_models": cm,
        "n_peaks_compared_amorphous": tally["amorphous"][0],
        "n_covered_amorphous": tally["amorphous"][1],
        "models_own_peaks_angstrom": own,
        "statement": (
            f"{c} of {n} peak distances (r1-r{result.parameters.n_peaks} of "
            f"{len(regions)} regions) have the expected one in their 95 % interval"
            + (
                f", {tally['unmatched']} {'is' if tally['unmatched'] == 1 else 'are'} no "
                "shell of the truth"
                if tally["unmatched"]
                else ""
            )
            + f"; {cm} of {n} cover the models' own; in the amorphous regions (the truth's "
            f"amorphous share of the intensity at least {AMORPHOUS_SHARE:g}): "
            f"{tally['amorphous'][1]} of {tally['amorphous'][0]}"
        ),
        "truth": "expected: the simulator's amorphous models, mixed per pattern as it mixed "
        "them and averaged over each region's patterns, through the same s range, fit, "
        "damping, peak search and termination correction; models: the models' own "
        "electron-weighted G(r), without the s range (docs/pdf.md). The truth holds the "
        "amorphous scattering only: in regions with amorphous false the Bragg spots of "
        "their crystals, which it lacks, dominate",
    }


def truth_sentence(comparison: dict[str, Any]) -> str:
    """One line for the log.

    Examples
    --------
    >>> truth_sentence({"statement": "2 of 3 peak distances ..."})
    '2 of 3 peak distances ...'
    """
    return str(comparison["statement"])
