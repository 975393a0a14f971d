"""Synthetic microstructure of a lithiated silicon electrode with ground truth.

The phantom imitates the cryo-STEM picture of a micro-silicon electrode after the
first lithiation (Ahmed et al., Figures 2b and 3d; see ``/work/shared/paper``):
fused particles (grains) separated by oxygen-rich grain boundaries and a few pores,
unlithiated crystalline Si in many particle cores, a majority of moderately lithiated
grey regions (Li/Si about 1.8) and dendrite-like, sheet-like high-Li threads
(Li/Si 2.8-4.3) near the grain boundaries that extend into the particles.

The phantom is meant to be shared by all forward models (EELS, diffraction, EDX,
HAADF), so it stores general fields (labels, composition, oxide share, relative
thickness, grain identity and orientation) rather than anything specific to one
technique.

All geometric numbers below are *model choices* made to resemble the paper's images;
they are not measurements. Lengths are in nm, maps are ``(ny, nx)`` in scan order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from anodemap.errors import AnodemapInputError

__all__ = ["ALL_LABEL_NAMES", "LABEL_NAMES", "Label", "Phantom", "make_phantom"]


class Label(IntEnum):
    """Region classes of the phantom (values stored in :attr:`Phantom.labels`)."""

    PORE = 0
    """Pore: vacuum or very thin residue (paper's feature 4)."""
    SI = 1
    """Unlithiated crystalline Si, Li/Si = 0, often particle cores (paper's feature 2)."""
    GREY = 2
    """Moderately lithiated amorphous Li_xSi, Li/Si about 1.8 (paper's feature 3)."""
    DENDRITE = 3
    """Dendrite-like / sheet-like high-Li regions, Li/Si 2.8-4.3 (paper's feature 1)."""
    OXIDE_GB = 4
    """Oxygen-rich grain boundary: Li2O and lithium silicates mixed with Li_xSi."""
    AMORPHOUS_SI = 5
    """Dense amorphous Si after delithiation (paper, Figure 4b: the denser particle cores).

    Not made by :func:`make_phantom`; :mod:`anodemap.synth.study` uses it for the
    delithiated states. The forward models treat it as amorphous (diffraction: rings of
    the a-Si model at the pixel's small Li/Si, never crystalline Si spots)."""
    THREAD = 6
    """Thread-like, irregularly meshed, less dense amorphous Si after delithiation (paper,
    Figure 4b, near the grain boundaries). Not made by :func:`make_phantom`; amorphous in
    the forward models, like :attr:`AMORPHOUS_SI`."""


LABEL_NAMES: dict[int, str] = {
    int(Label.PORE): "pore",
    int(Label.SI): "crystalline Si (unlithiated)",
    int(Label.GREY): "moderately lithiated Li_xSi (grey)",
    int(Label.DENDRITE): "dendrite-like high-Li Li_xSi",
    int(Label.OXIDE_GB): "oxygen-rich grain boundary (Li2O / Li silicates)",
}

# The classes of the delithiated states are kept out of LABEL_NAMES, so that
# make_phantom's phantoms (and everything written from them) stay as they were.
ALL_LABEL_NAMES: dict[int, str] = {
    **LABEL_NAMES,
    int(Label.AMORPHOUS_SI): "dense amorphous Si (delithiated)",
    int(Label.THREAD): "thread-like amorphous Si mesh (delithiated, less dense)",
}

# Li/Si ranges per class. Source: Ahmed et al., first-lithiation results (Figure 3d):
# feature 2 (c-Si) has no detectable Li, feature 3 (grey) about 1.8, feature 1
# (dendrite-like) 2.8 to 4.3.
_GREY_MEAN = 1.8  # paper, "average Li/Si ratio of approximately 1.8"
_GREY_SPREAD = 0.1  # model choice (standard deviation of the smooth variation)
_GREY_RANGE = (1.5, 2.1)  # model choice (clip range around the paper's 1.8)
_DENDRITE_RANGE = (2.8, 4.3)  # paper, "Typical Li/Si ratios in these regions range from 2.8 to 4.3"
_GB_SILICIDE_RANGE = (2.0, 3.5)  # model choice: Li-rich silicide mixed into the oxide boundaries

# Relative thickness t/lambda. The lamella was thinned to about 100-150 nm (paper,
# Methods); t/lambda itself is a model choice.
T_RANGE = (0.3, 1.2)  # model choice (material pixels)
_T_PORE = 0.05  # model choice (thin residue in pores)

# Relative inelastic "density" of each class, which modulates t/lambda at fixed
# physical thickness (lithiated regions are expanded and less dense). Model choice.
T_MATERIAL_FACTOR = {
    Label.SI: 1.0,
    Label.GREY: 0.9,
    Label.DENDRITE: 0.85,
    Label.OXIDE_GB: 0.9,
}

# Angle between the traces of two {111} planes seen along <110>: 70.53 deg
# (crystal geometry of the diamond lattice). The sheet-like features are modelled
# as lying on two such plane families per grain; the angle is quantised to the
# nearest multiple of 180/_N_FAMILIES (67.5 deg for 8 families). Model choice.
_N_FAMILIES = 8
_SECOND_FAMILY_STEP = 3  # 3 * 22.5 deg = 67.5 deg, the nearest to 70.53 deg


@dataclass
class Phantom:
    """A 2-D projected microstructure with ground truth.

    Attributes
    ----------
    labels : ndarray of uint8, shape (ny, nx)
        Region class per pixel, see :class:`Label` and :attr:`label_names`.
    label_names : dict of int to str
        Human readable name of each label value.
    li_per_si : ndarray of float64, shape (ny, nx)
        x in Li_xSi of the silicide at each pixel (0 in pores and in c-Si). In oxide-rich
        boundary pixels this is the x of the silicide that is mixed with the oxide.
    oxide_fraction : ndarray of float64, shape (ny, nx)
        Share (0..1) of Li2O / lithium silicate in the projected column; high at
        grain boundaries and around pores, 0 elsewhere.
    t_over_lambda : ndarray of float64, shape (ny, nx)
        Relative thickness t/lambda (inelastic mean free path units).
    grain_id : ndarray of int32, shape (ny, nx)
        Index of the particle/grain (0..n_grains-1) the pixel belongs to, pores included.
    boundary : ndarray of bool, shape (ny, nx)
        True within the grain-boundary band (whether or not it is oxide-rich).
    boundary_distance_nm : ndarray of float64, shape (ny, nx)
        Approximate distance to the nearest grain boundary in nm.
    grain_euler_deg : ndarray of float64, shape (n_grains, 3)
        Random crystal orientation of each grain as Bunge Euler angles (phi1, Phi, phi2)
        in degrees, uniform on SO(3); for diffraction simulators.
    grain_sheet_angle_deg : ndarray of float64, shape (n_grains,)
        In-plane angle (degrees, from +x towards +y) of the main family of sheet-like
        dendrite features in each grain.
    pixel_size_nm : float
        Scan step in nm.
    seed : int
        Seed the phantom was made with.
    plasmon_shift_eV : ndarray of float64, shape (ny, nx), or None
        Offset (eV) of the Li_xSi bulk plasmon from the composition calibration
        ``E(li_per_si)``, for structure that the composition does not describe, e.g. the
        lower density of amorphous Si after delithiation. ``None`` (what
        :func:`make_phantom` gives) means no offset. :func:`anodemap.synth.simulate_eels`
        puts the plasmon maximum at ``E(li_per_si) + plasmon_shift_eV``.
    """

    labels: np.ndarray
    li_per_si: np.ndarray
    oxide_fraction: np.ndarray
    t_over_lambda: np.ndarray
    grain_id: np.ndarray
    boundary: np.ndarray
    boundary_distance_nm: np.ndarray
    grain_euler_deg: np.ndarray
    grain_sheet_angle_deg: np.ndarray
    pixel_size_nm: float
    seed: int
    label_names: dict[int, str] = field(default_factory=lambda: dict(LABEL_NAMES))
    # Optional, last and None by default: phantoms made before it existed, and every
    # simulation of them, are unchanged.
    plasmon_shift_eV: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        """Scan shape ``(ny, nx)``."""
        return self.labels.shape  # type: ignore[return-value]

    @property
    def n_grains(self) -> int:
        """Number of grains (particles) in the phantom."""
        return int(self.grain_euler_deg.shape[0])

    def label_fractions(self) -> dict[int, float]:
        """Area fraction of each label.

        Returns
        -------
        dict of int to float
            Fraction of pixels per label value (all labels in :attr:`label_names`).
        """
        counts = np.bincount(self.labels.ravel(), minlength=len(self.label_names))
        return {k: float(counts[k]) / self.labels.size for k in self.label_names}


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Gaussian-filtered white noise with zero mean and unit standard deviation."""
    field_ = ndimage.gaussian_filter(
        rng.standard_normal(shape), sigma=max(sigma_px, 0.5), mode="wrap"
    )
    field_ -= field_.mean()
    std = field_.std()
    return field_ / std if std > 0 else field_


def _oriented_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    angle_rad: float,
    sigma_par_px: float,
    sigma_perp_px: float,
) -> np.ndarray:
    """Anisotropic smooth noise, elongated along ``angle_rad`` (unit std).

    Its zero level lines are wavy, mostly parallel threads with occasional branches.
    """
    ny, nx = shape
    white = rng.standard_normal(shape)
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.rfftfreq(nx)[None, :]
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    k_par = kx * c + ky * s
    k_perp = -kx * s + ky * c
    filt = np.exp(-2.0 * np.pi**2 * ((sigma_par_px * k_par) ** 2 + (sigma_perp_px * k_perp) ** 2))
    out = np.fft.irfft2(np.fft.rfft2(white) * filt, s=shape)
    out -= out.mean()
    std = out.std()
    return out / std if std > 0 else out


def _random_euler_deg(rng: np.random.Generator, n: int) -> np.ndarray:
    """Bunge Euler angles (deg) of ``n`` orientations uniform on SO(3)."""
    phi1 = rng.uniform(0.0, 360.0, n)
    big_phi = np.degrees(np.arccos(rng.uniform(-1.0, 1.0, n)))
    phi2 = rng.uniform(0.0, 360.0, n)
    return np.stack([phi1, big_phi, phi2], axis=1)


def make_phantom(
    shape: tuple[int, int] = (64, 64),
    pixel_size_nm: float = 5.0,
    seed: int = 0,
    *,
    grain_size_nm: float = 100.0,
    pore_fraction: float = 0.04,
    boundary_width_nm: float = 10.0,
) -> Phantom:
    """Make a synthetic first-lithiation silicon electrode microstructure.

    Grains are an additively weighted, domain-warped Voronoi tessellation (multi-modal
    sizes, curved boundaries). Pores sit at triple junctions and along boundaries.
    Lithiation proceeds from the grain surfaces inwards: each grain has its own front
    depth, leaving c-Si cores in some grains; sheet-like, high-Li threads grow from the
    boundaries along two crystal-plane families per grain; oxide (Li2O / silicates)
    decorates most boundaries and the pore surfaces.

    Parameters
    ----------
    shape : tuple of int
        Scan shape ``(ny, nx)``.
    pixel_size_nm : float
        Scan step in nm.
    seed : int
        Seed for :func:`numpy.random.default_rng`; the only source of randomness.
    grain_size_nm : float
        Typical grain (fused particle) diameter in nm (model choice).
    pore_fraction : float
        Target area fraction of pores (model choice: porosity is strongly reduced after
        the first lithiation according to the paper).
    boundary_width_nm : float
        Full width of the grain-boundary band in nm (at least ~1.2 pixels is used).

    Returns
    -------
    Phantom
        The microstructure and its ground-truth fields.

    Examples
    --------
    >>> from anodemap.synth import make_phantom
    >>> ph = make_phantom((64, 64), pixel_size_nm=5.0, seed=1)
    >>> ph.labels.shape, ph.labels.dtype.name
    ((64, 64), 'uint8')
    >>> sorted(ph.label_fractions()) == [0, 1, 2, 3, 4]
    True
    """
    ny, nx = (int(shape[0]), int(shape[1]))
    if ny < 8 or nx < 8:
        raise AnodemapInputError(f"shape={shape!r}: the phantom needs at least 8 x 8 pixels")
    if not pixel_size_nm > 0:
        raise AnodemapInputError(f"pixel_size_nm={pixel_size_nm!r} must be positive")
    if not 0.0 <= pore_fraction < 0.5:
        raise AnodemapInputError(f"pore_fraction={pore_fraction!r} must lie in [0, 0.5)")
    rng = np.random.default_rng(seed)
    h = float(pixel_size_nm)
    gsize = float(grain_size_nm)
    gsize_px = gsize / h

    # --- grains: additively weighted, domain-warped Voronoi -------------------------
    width_nm, height_nm = nx * h, ny * h
    margin = 0.5 * gsize
    n_seeds = max(6, int(round((width_nm + 2 * margin) * (height_nm + 2 * margin) / gsize**2)))
    seeds = np.column_stack(
        [
            rng.uniform(-margin, height_nm + margin, n_seeds),
            rng.uniform(-margin, width_nm + margin, n_seeds),
        ]
    )
    # Additive weights give a multi-modal size distribution (paper, Figure 1e).
    weights = gsize * rng.uniform(0.0, 0.35, n_seeds)  # model choice
    yy, xx = np.meshgrid((np.arange(ny) + 0.5) * h, (np.arange(nx) + 0.5) * h, indexing="ij")
    warp_amp = 0.08 * gsize  # model choice: rough, curved boundaries
    wy = yy + warp_amp * smooth_noise(rng, (ny, nx), 0.35 * gsize_px)
    wx = xx + warp_amp * smooth_noise(rng, (ny, nx), 0.35 * gsize_px)
    pts = np.column_stack([wy.ravel(), wx.ravel()])
    k = min(8, n_seeds)
    dist, idx = cKDTree(seeds).query(pts, k=k)
    wdist = dist - weights[idx]
    order = np.argsort(wdist, axis=1)[:, :3]
    rows = np.arange(pts.shape[0])[:, None]
    wd3 = wdist[rows, order]
    nearest = idx[rows, order]
    g_first = nearest[:, 0]
    g_second = nearest[:, 1]
    # Distance to the boundary between the first and the j-th nearest grain, to first
    # order: (weighted distance difference) / |gradient of that difference|, where the
    # gradient is the difference of the unit vectors towards the two seeds.
    unit = (pts[:, None, :] - seeds[nearest]) / np.maximum(dist[rows, order], 1e-9)[..., None]
    grad12 = np.maximum(np.linalg.norm(unit[:, 1] - unit[:, 0], axis=1), 1e-3)
    grad13 = np.maximum(np.linalg.norm(unit[:, 2] - unit[:, 0], axis=1), 1e-3)
    d12 = ((wd3[:, 1] - wd3[:, 0]) / grad12).reshape(ny, nx)
    d13 = ((wd3[:, 2] - wd3[:, 0]) / grad13).reshape(ny, nx)
    # Triple junctions are close to two boundaries at once.
    tj_dist = np.maximum(d12, d13)

    present, grain_id = np.unique(g_first, return_inverse=True)
    grain_id = grain_id.reshape(ny, nx).astype(np.int32)
    n_grains = present.size
    remap = np.full(n_seeds, -1, dtype=np.int64)
    remap[present] = np.arange(n_grains)
    g_other = remap[g_second].reshape(ny, nx)  # -1 where the neighbour is outside the view

    # The first-order estimate fails where the unit vectors are nearly parallel; cap it
    # by the distance to the nearest pixel edge between different grains (exact on the
    # pixel grid, half a pixel at the boundary).
    edge = np.zeros((ny, nx), dtype=bool)
    dy = grain_id[1:, :] != grain_id[:-1, :]
    dx = grain_id[:, 1:] != grain_id[:, :-1]
    edge[1:, :] |= dy
    edge[:-1, :] |= dy
    edge[:, 1:] |= dx
    edge[:, :-1] |= dx
    if edge.any():
        d_grid = (ndimage.distance_transform_edt(~edge) + 0.5) * h
    else:
        d_grid = np.full((ny, nx), np.inf)
    bdist = np.minimum(np.minimum(d12, d13), d_grid)

    half_bw = max(0.5 * boundary_width_nm, 0.6 * h)  # at least ~1.2 pixels wide
    boundary = bdist < half_bw

    # Depth inside the grain, normalised by the grain's largest boundary distance.
    gidx = np.arange(n_grains)
    rmax = np.asarray(ndimage.maximum(bdist, labels=grain_id, index=gidx), dtype=float)
    # Grains cut by the field of view would otherwise get an inflated depth scale:
    # cap it by the radius of the disc of equal area.
    r_eq = np.sqrt(np.bincount(grain_id.ravel(), minlength=n_grains) * h * h / np.pi)
    rmax = np.maximum(np.minimum(rmax, r_eq), h)
    depth = np.clip(bdist / rmax[grain_id], 0.0, 1.0)

    # --- pores: at triple junctions / boundaries where a smooth noise is high -------
    pore_noise = smooth_noise(rng, (ny, nx), 0.25 * gsize_px)
    # model choice: pores prefer triple junctions (tj_dist) and boundaries (bdist)
    pore_score = pore_noise - tj_dist / (0.15 * gsize) - bdist / (0.1 * gsize)
    if pore_fraction > 0:
        thr = np.quantile(pore_score, 1.0 - pore_fraction)
        pore = pore_score > thr
    else:
        pore = np.zeros((ny, nx), dtype=bool)

    # --- oxide at boundaries and pore surfaces --------------------------------------
    grain_ox = rng.uniform(0.15, 1.0, n_grains)  # per-grain oxide strength, model choice
    other_ox = np.where(g_other >= 0, grain_ox[np.maximum(g_other, 0)], grain_ox[grain_id])
    pair_strength = 0.5 * (grain_ox[grain_id] + other_ox)
    sigma_ox = max(0.5 * boundary_width_nm, 0.7 * h)  # model choice: Gaussian profile width
    oxide = 0.9 * pair_strength * np.exp(-0.5 * (bdist / sigma_ox) ** 2)  # model choice
    if pore.any():
        d_pore = ndimage.distance_transform_edt(~pore) * h
        # Oxygen concentrates near pores (paper, Figure 3b). Model choice: 0.7 peak.
        oxide = np.maximum(oxide, 0.7 * np.exp(-0.5 * (d_pore / sigma_ox) ** 2))
    oxide[oxide < 0.02] = 0.0  # model choice: no trace amounts inside the grains
    oxide = np.clip(oxide, 0.0, 0.95)
    oxide[pore] = 0.0
    oxide_gb = (oxide >= 0.3) & ~pore  # model choice: class threshold

    # --- lithiation front: c-Si cores --------------------------------------------------
    # Each grain is lithiated from its surface to a front at depth `front`; values > 1
    # mean no core is left. About one grain in seven stays mostly unlithiated.
    front = rng.uniform(0.45, 1.3, n_grains)  # model choice
    mostly_si = rng.random(n_grains) < 0.15  # model choice
    front[mostly_si] = rng.uniform(0.05, 0.2, int(mostly_si.sum()))
    front_noise = smooth_noise(rng, (ny, nx), 0.15 * gsize_px)
    core = depth > front[grain_id] + 0.12 * front_noise  # model choice: rough front

    # --- dendrite-like sheet features -------------------------------------------------
    angles = np.arange(_N_FAMILIES) * np.pi / _N_FAMILIES
    sig_par = max(0.5 * gsize, 6.0 * h) / h  # model choice: threads elongated
    sig_perp = max(8.0, 1.5 * h) / h  # model choice: sets the thread spacing
    fam_fields = np.stack(
        [_oriented_noise(rng, (ny, nx), a, sig_par, sig_perp) for a in angles], axis=0
    )
    fam = rng.integers(0, _N_FAMILIES, n_grains)
    fam2 = (fam + _SECOND_FAMILY_STEP) % _N_FAMILIES
    f1 = np.take_along_axis(fam_fields, fam[grain_id][None], axis=0)[0]
    f2 = np.take_along_axis(fam_fields, fam2[grain_id][None], axis=0)[0]
    thread_eps = 0.4  # model choice: thread thickness as a fraction of the noise std
    secondary = smooth_noise(rng, (ny, nx), 0.2 * gsize_px) > 0.6  # model choice: branches
    threads = (np.abs(f1) < thread_eps) | ((np.abs(f2) < thread_eps) & secondary)
    # Only some boundaries grow dendrites (paper: "not uniformly distributed near all
    # pores, grain boundaries, or particle surfaces").
    activity = smooth_noise(rng, (ny, nx), 0.3 * gsize_px)
    active_grain = rng.random(n_grains) < 0.75  # model choice
    reach = rng.uniform(0.4, 0.9, n_grains)  # model choice: how far threads extend inwards
    zone_noise = smooth_noise(rng, (ny, nx), 0.1 * gsize_px)
    # model choice: ragged reach, about 70 % of the area of active grains is active
    zone = (depth < reach[grain_id] + 0.1 * zone_noise) & active_grain[grain_id] & (activity > -0.5)
    dendrite = threads & zone

    # --- labels (priority: pore > oxide boundary > dendrite > core > grey) -------------
    labels = np.full((ny, nx), Label.GREY, dtype=np.uint8)
    labels[core] = Label.SI
    labels[dendrite] = Label.DENDRITE
    labels[oxide_gb] = Label.OXIDE_GB
    labels[pore] = Label.PORE

    # --- Li per Si ---------------------------------------------------------------------
    li = np.zeros((ny, nx))
    grey_field = _GREY_MEAN + _GREY_SPREAD * smooth_noise(rng, (ny, nx), 0.2 * gsize_px)
    m = labels == Label.GREY
    li[m] = np.clip(grey_field[m], *_GREY_RANGE)
    lo, hi = _DENDRITE_RANGE
    # model choice: variable Li content, higher close to the boundaries
    u = 0.55 + 0.3 * smooth_noise(rng, (ny, nx), 0.08 * gsize_px) + 0.25 * (0.5 - depth)
    m = labels == Label.DENDRITE
    li[m] = lo + (hi - lo) * np.clip(u[m], 0.0, 1.0)
    lo, hi = _GB_SILICIDE_RANGE
    v = 0.5 + 0.3 * smooth_noise(rng, (ny, nx), 0.15 * gsize_px)  # model choice
    m = labels == Label.OXIDE_GB
    li[m] = lo + (hi - lo) * np.clip(v[m], 0.0, 1.0)

    # --- relative thickness -----------------------------------------------------------
    theta = rng.uniform(0.0, 2.0 * np.pi)
    ramp = (np.cos(theta) * (xx - xx.mean()) + np.sin(theta) * (yy - yy.mean())) / max(
        width_nm, height_nm
    )
    # model choice: FIB wedge (ramp) plus smooth thickness variation
    t_base = 0.8 + 0.35 * ramp + 0.12 * smooth_noise(rng, (ny, nx), 1.0 * gsize_px)
    mat = np.ones((ny, nx))
    for lab, fac in T_MATERIAL_FACTOR.items():
        mat[labels == lab] = fac
    t_over_lambda = np.clip(t_base * mat, *T_RANGE)
    t_pore = _T_PORE * (1.0 + 0.2 * smooth_noise(rng, (ny, nx), 2.0))  # model choice
    t_over_lambda[pore] = np.clip(t_pore[pore], 0.02, 0.1)

    sheet_angle = np.degrees(angles[fam])
    return Phantom(
        labels=labels,
        li_per_si=li,
        oxide_fraction=oxide,
        t_over_lambda=t_over_lambda,
        grain_id=grain_id,
        boundary=boundary,
        boundary_distance_nm=bdist,
        grain_euler_deg=_random_euler_deg(rng, n_grains),
        grain_sheet_angle_deg=sheet_angle,
        pixel_size_nm=h,
        seed=int(seed),
    )
