"""Direct beam, virtual images, region averages and I(s) on simulated and real 4D data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from anodemap.diffraction.calibration import ReciprocalCalibration
from anodemap.diffraction.virtual import (
    Annulus,
    DirectBeam,
    Disk,
    averaged_patterns,
    azimuthal_average,
    find_direct_beam,
    image_dataset,
    mean_pattern,
    mean_patterns,
    virtual_adf,
    virtual_bf,
    virtual_image,
    virtual_images,
)
from anodemap.errors import AnodemapInputError
from anodemap.io import Axis, Dataset, load
from anodemap.status import Status

K = 96  # detector pixels
RADIUS = 7.0  # direct-beam radius, px
RING_PX = 30.0  # ring radius, px
SCALE = 0.01  # 1/Å per px: the ring sits at s = 0.30 1/Å


def simulate(ny=6, nx=8, seed=0, ring_px=RING_PX):
    """4D data with known descan: soft-edged direct beam, diffuse halo, a ring, Friedel
    pairs of spots, Poisson noise. Returns (counts, true centres (ny, nx, 2))."""
    rng = np.random.default_rng(seed)
    iy, ix = np.mgrid[:ny, :nx]
    mid = (K - 1) / 2
    cy = mid + 0.9 * (iy - ny / 2) - 0.35 * (ix - nx / 2) + rng.uniform(-0.5, 0.5, (ny, nx))
    cx = mid - 0.4 * (iy - ny / 2) + 0.7 * (ix - nx / 2) + rng.uniform(-0.5, 0.5, (ny, nx))
    yy, xx = np.mgrid[:K, :K].astype(float)
    dy = yy - cy[..., None, None]
    dx = xx - cx[..., None, None]
    d = np.hypot(dy, dx)
    lam = 3000.0 / (1 + np.exp((d - RADIUS) / 0.5))
    lam += 40 * np.exp(-0.5 * ((d - ring_px) / 1.2) ** 2)
    lam += 5 + 100 * np.exp(-d / 15)
    for g in ((18, 10), (-7, 22)):
        for sign in (1, -1):
            lam += 400 * np.exp(-0.5 * ((dy - sign * g[0]) ** 2 + (dx - sign * g[1]) ** 2) / 1.44)
    return rng.poisson(lam).astype(np.float64), np.stack([cy, cx], axis=-1)


@pytest.fixture(scope="module")
def sim():
    return simulate()


def calibrated(data):
    ny, nx = data.shape[:2]
    axes = [
        Axis("y", ny, 2.0, 0.0, "nm"),
        Axis("x", nx, 2.0, 0.0, "nm"),
        Axis("ky", K, SCALE, 0.0, "1/Å", navigate=False),
        Axis("kx", K, SCALE, 0.0, "1/Å", navigate=False),
    ]
    return Dataset(data, axes)


def reference_masked_sum(data, centers, inner, outer):
    """numpy reference: counts with inner <= d <= outer around each centre."""
    yy, xx = np.mgrid[:K, :K]
    out = np.empty(data.shape[:2])
    for j in np.ndindex(*data.shape[:2]):
        c = centers[j] if np.ndim(centers) == 3 else centers
        d2 = (yy - c[0]) ** 2 + (xx - c[1]) ** 2
        out[j] = data[j][(d2 >= inner**2) & (d2 <= outer**2)].sum()
    return out


def spread(img):
    """Relative range of an image."""
    return (img.max() - img.min()) / img.mean()


# ------------------------------------------------------------------------ centring
def test_centres_recovered_to_subpixel_precision(sim):
    data, truth = sim
    beam = find_direct_beam(data)  # radius estimated from the data
    assert (beam.status == Status.OK).all()
    err = np.abs(beam.center - truth)
    assert err.max() < 0.05, err.max()
    assert np.nanmean(beam.radius) == pytest.approx(RADIUS, abs=0.2)
    assert beam.search_radius == pytest.approx(RADIUS, abs=1.0)
    np.testing.assert_allclose(beam.shift, truth - (K - 1) / 2, atol=0.05)


def test_centres_identical_lazy_and_with_a_guess(sim):
    da = pytest.importorskip("dask.array")
    data, truth = sim
    eager = find_direct_beam(data, radius=RADIUS)
    lazy = find_direct_beam(da.from_array(data, chunks=(2, 3, 48, 48)), radius=RADIUS)
    np.testing.assert_allclose(lazy.center, eager.center, atol=1e-12)
    guided = find_direct_beam(data, radius=RADIUS, guess=(47.5, 47.5), max_shift=8)
    assert np.abs(guided.center - truth).max() < 0.05


def test_beam_outshone_by_a_bragg_disk_is_found_from_the_neighbours_descan():
    """A thick grain near a zone axis: a Bragg disk brighter than the direct beam in a
    block of patterns. The brightest disk is not the beam there; the disk where the
    neighbours' descan puts the beam is, and it is refined as precisely as elsewhere."""
    data, truth = simulate(ny=12, nx=14, seed=4)
    yy, xx = np.mgrid[:K, :K].astype(float)
    block = np.zeros((12, 14), bool)
    block[3:7, 5:9] = True  # 16 patterns
    rng = np.random.default_rng(9)
    for j in zip(*np.nonzero(block), strict=True):
        d = np.hypot(yy - truth[j][0] - 18, xx - truth[j][1] - 10)
        data[j] += rng.poisson(4500.0 / (1 + np.exp((d - RADIUS) / 0.5)))
    # without the descan of the neighbours (one pattern at a time) the disk is taken
    alone = find_direct_beam(data[3:4, 5:6], radius=RADIUS)
    assert np.abs(alone.center[0, 0] - truth[3, 5] - (18, 10)).max() < 0.5
    beam = find_direct_beam(data, radius=RADIUS)
    assert (beam.status == Status.OK).all()
    assert np.abs(beam.center - truth).max() < 0.05
    np.testing.assert_array_equal(beam.outshone, block)
    assert np.nanmean(beam.radius[block]) == pytest.approx(RADIUS, abs=0.3)
    # a guess from the user is trusted: no second opinion
    guided = find_direct_beam(data, radius=RADIUS, guess=(47.5, 47.5), max_shift=8)
    assert not guided.outshone.any()
    assert np.abs(guided.center - truth).max() < 0.05


def test_failed_pattern_is_flagged_and_filled_from_the_descan_plane(sim):
    data, truth = sim
    data = data.copy()
    data[2, 3] = np.random.default_rng(5).poisson(5.0, (K, K))  # beam blanked
    data[4, 1, 0, 0] = np.nan
    beam = find_direct_beam(data, radius=RADIUS)
    assert beam.status[2, 3] == Status.NO_SIGNAL
    assert beam.status[4, 1] == Status.INVALID_INPUT
    assert np.isnan(beam.center[2, 3]).all()
    ok = beam.ok
    assert ok.sum() == data.shape[0] * data.shape[1] - 2
    filled = beam.filled()
    assert np.isfinite(filled).all()
    np.testing.assert_array_equal(filled[ok], beam.center[ok])
    # the plane through the truth's linear part: jitter is uniform ±0.5 px (σ = 0.29)
    assert np.abs(filled[2, 3] - truth[2, 3]).max() < 1.0
    with pytest.raises(AnodemapInputError, match="not finite"):
        virtual_bf(data, 5, center=beam.center)


def test_centre_agrees_with_pyxem_centre_of_mass():
    pxm = pytest.importorskip("pyxem")
    data, truth = simulate(seed=3, ring_px=60)  # the ring outside the detector: pyxem's
    with warnings.catch_warnings():  # thresholded COM has no background model
        warnings.simplefilter("ignore")
        shifts = pxm.signals.Diffraction2D(data).get_direct_beam_position(
            method="center_of_mass", threshold=3
        )
    # pyxem returns (x, y) shifts = signal_shape / 2 - centre
    theirs = K / 2 - np.asarray(shifts.data)[..., ::-1]
    ours = find_direct_beam(data).center
    assert np.abs(theirs - truth).max() < 0.05
    assert np.abs(ours - truth).max() < 0.05
    assert np.abs(ours - theirs).max() < 0.05


# -------------------------------------------------------------------- virtual images
def test_virtual_images_equal_masked_sums_fixed_and_descan_corrected(sim):
    data, truth = sim
    mid = ((K - 1) / 2, (K - 1) / 2)
    out = virtual_images(data, {"bf": Disk(8.0), "adf": Annulus(12.0, 40.0)})
    np.testing.assert_allclose(out["bf"], reference_masked_sum(data, mid, 0, 8.0), rtol=1e-12)
    np.testing.assert_allclose(out["adf"], reference_masked_sum(data, mid, 12, 40), rtol=1e-12)
    beam = find_direct_beam(data, radius=RADIUS)
    bf = virtual_bf(data, 8.0, center=beam)
    np.testing.assert_allclose(bf, reference_masked_sum(data, beam.center, 0, 8.0), rtol=1e-12)
    # descan correction: the BF disk follows the beam, so every pattern keeps the whole
    # beam (the simulated sample is uniform: the same counts everywhere but for noise and
    # the pixelation of the disk edge); a fixed disk loses part of it where the beam moved
    assert spread(bf) < 0.02
    assert spread(virtual_bf(data, 8.0)) > 0.2
    adf = virtual_adf(data, 0.12, 0.40, center=beam, units="1/Å", calibration=SCALE)
    np.testing.assert_allclose(adf, reference_masked_sum(data, beam.center, 12, 40), rtol=1e-12)


def test_virtual_images_lazy_other_chunks_and_distributed(sim, local_cluster_client):
    da = pytest.importorskip("dask.array")
    data, _ = sim
    masks = {"bf": Disk(8.0), "adf": Annulus(12.0, 40.0)}
    ref = virtual_images(data, masks)
    centers = find_direct_beam(data, radius=RADIUS).center
    ref_c = virtual_images(data, masks, center=centers)
    lazy = da.from_array(data, chunks=(4, 3, 32, 96))
    for kw in ({}, {"client": local_cluster_client}):
        out = virtual_images(lazy, masks, rows_per_chunk=2, **kw)
        out_c = virtual_images(lazy, masks, center=centers, rows_per_chunk=5, **kw)
        for name in masks:
            np.testing.assert_allclose(out[name], ref[name], rtol=1e-12)
            np.testing.assert_allclose(out_c[name], ref_c[name], rtol=1e-12)
    beam = find_direct_beam(lazy, radius=RADIUS, client=local_cluster_client)
    np.testing.assert_allclose(beam.center, centers, atol=1e-12)


def test_arbitrary_masks_fixed_and_shifted():
    rng = np.random.default_rng(2)
    data = rng.poisson(10.0, (3, 4, 32, 32)).astype(float)
    mask = np.zeros((32, 32))
    mask[10:14, 18:25] = 1.0
    mask[20, 5] = 0.5
    ref = np.einsum("abij,ij->ab", data, mask)
    np.testing.assert_allclose(virtual_image(data, mask), ref, rtol=1e-12)
    # per-pattern centres at the mask's own centre: the mask is used as drawn
    same = np.full((3, 4, 2), 15.5)
    np.testing.assert_allclose(virtual_image(data, mask, center=same), ref, rtol=1e-12)
    # whole-pixel descan: the mask moves with each pattern
    shifts = rng.integers(-3, 4, (3, 4, 2))
    centers = 15.5 + shifts
    moved = virtual_image(data, mask, center=centers)
    for j in np.ndindex(3, 4):
        m = np.roll(mask, tuple(shifts[j]), axis=(0, 1))
        assert moved[j] == pytest.approx((data[j] * m).sum(), rel=1e-12)
    # a half-pixel shift splits the mask between neighbours (bilinear): total weight kept
    half = virtual_image(np.ones((1, 1, 32, 32)), mask, center=np.full((1, 1, 2), 16.0))
    assert half[0, 0] == pytest.approx(mask.sum())
    with pytest.raises(AnodemapInputError, match="shape"):
        virtual_image(data, np.ones((8, 8)))


def test_virtual_images_agree_with_pyxem():
    pytest.importorskip("pyxem")
    hs = pytest.importorskip("hyperspy.api")
    import pyxem as pxm

    data, _ = simulate(seed=4)
    s = pxm.signals.Diffraction2D(data)
    # HyperSpy's CircleROI puts its centre at (cx, cy) + 0.5001 px and slices the bounding
    # box with rounding; radii are chosen so that no pixel lies on that rounding edge.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bf = s.get_integrated_intensity(hs.roi.CircleROI(cx=47.5, cy=46.2, r=7.9)).data
        adf = s.get_integrated_intensity(
            hs.roi.CircleROI(cx=47.5, cy=47.5, r=29.6, r_inner=10.3)
        ).data
    np.testing.assert_allclose(virtual_bf(data, 7.9, center=(46.7001, 48.0001)), bf, rtol=1e-12)
    np.testing.assert_allclose(
        virtual_adf(data, 10.3, 29.6, center=(48.0001, 48.0001)), adf, rtol=1e-12
    )


# ----------------------------------------------------------------- region averages
def test_region_average_equals_numpy_mean(sim, local_cluster_client):
    da = pytest.importorskip("dask.array")
    data, _ = sim
    region = np.zeros(data.shape[:2], dtype=bool)
    region[1:4, 2:7] = True
    region[5, 0] = True
    ref = data[region].mean(axis=0)
    np.testing.assert_allclose(mean_pattern(data, region), ref, rtol=1e-12)
    np.testing.assert_allclose(mean_pattern(data), data.mean(axis=(0, 1)), rtol=1e-12)
    lazy = da.from_array(data, chunks=(5, 2, 96, 48))
    np.testing.assert_allclose(mean_pattern(lazy, region, rows_per_chunk=2), ref, rtol=1e-12)
    np.testing.assert_allclose(
        mean_pattern(lazy, region, client=local_cluster_client), ref, rtol=1e-12
    )
    with pytest.raises(AnodemapInputError, match="no scan position"):
        mean_pattern(data, np.zeros(data.shape[:2], bool))
    with pytest.raises(AnodemapInputError, match="region"):
        mean_pattern(data, np.ones((2, 2), bool))


def test_descan_corrected_average_realigns_patterns():
    rng = np.random.default_rng(7)
    base = np.zeros((40, 40))
    base[12:28, 12:28] = rng.uniform(1, 10, (16, 16))
    shifts = rng.integers(-4, 5, (3, 5, 2))
    data = np.stack(
        [np.roll(base, tuple(shifts[j]), axis=(0, 1)) for j in np.ndindex(3, 5)]
    ).reshape(3, 5, 40, 40)
    centers = 19.5 + shifts.astype(float)
    aligned = mean_pattern(data, center=centers)
    np.testing.assert_allclose(aligned[8:32, 8:32], base[8:32, 8:32], rtol=1e-12)
    assert not np.allclose(mean_pattern(data)[8:32, 8:32], base[8:32, 8:32])


def test_mean_patterns_of_a_label_map_are_each_region_averaged_alone(sim, local_cluster_client):
    """One pass over a label map gives what one pass per region gives (mean_pattern),
    descan-corrected or not, in memory, lazily and on a cluster."""
    da = pytest.importorskip("dask.array")
    data, truth = sim
    labels = np.random.default_rng(3).integers(-1, 3, data.shape[:2])
    labels[labels == 2] = 1  # label 2 of n_labels=4 and 3 are empty
    lazy = da.from_array(data, chunks=(4, 3, 96, 48))
    for center in (None, truth):
        means, n = mean_patterns(data, labels, 4, center=center)
        assert n.tolist() == [int((labels == k).sum()) for k in range(4)]
        for k in (0, 1):
            np.testing.assert_allclose(
                means[k], mean_pattern(data, labels == k, center=center), rtol=1e-12
            )
        assert not means[2:].any()
        lazy_means, _ = mean_patterns(lazy, labels, 4, center=center, rows_per_chunk=2)
        np.testing.assert_allclose(lazy_means, means, rtol=1e-12)
    on_cluster, _ = mean_patterns(lazy, labels, 4, center=truth, client=local_cluster_client)
    np.testing.assert_allclose(on_cluster, means, rtol=1e-12)
    with pytest.raises(AnodemapInputError, match="integers"):
        mean_patterns(data, labels.astype(float))
    with pytest.raises(AnodemapInputError, match="no scan position"):
        mean_patterns(data, np.full(data.shape[:2], -1))
    with pytest.raises(AnodemapInputError, match="label map of shape"):
        mean_patterns(data, labels[:2])


def test_averaged_profiles_equal_the_mean_of_each_pattern_own_profile(sim):
    """I(s) of a region, binned around every pattern's own sub-pixel centre, equals the
    mean of the patterns' own I(s) (to the small differences of their bin weights), and
    puts the ring at its simulated s; the integer-shifted mean pattern and an uncorrected
    average do not do as well."""
    data, truth = sim
    ds = calibrated(data)
    labels = np.zeros(data.shape[:2], int)
    labels[:, 4:] = 1
    means, n, prof = averaged_patterns(ds, labels, center=truth)
    assert n.tolist() == [24, 24]
    np.testing.assert_allclose(means[0], mean_pattern(ds, labels == 0, center=truth))
    own = azimuthal_average(ds, center=truth, s_max=float(prof.s[-1]) + 1e-9)
    assert own.s.size == prof.s.size
    past_beam = prof.s > 0.15
    for k in (0, 1):
        ref = own.intensity[labels == k].mean(axis=0)
        rel = np.abs(prof.intensity[k] - ref) / ref
        assert rel[past_beam].max() < 2e-3, rel[past_beam].max()
        outer = prof.s > 0.2
        ring = type(prof)(prof.s[outer], prof.intensity[k][outer], prof.calibration)
        assert _peak(ring) == pytest.approx(RING_PX * SCALE, abs=0.25 * SCALE)
        # not corrected for the descan: the rings of the average are smeared
        plain = azimuthal_average(
            mean_pattern(ds, labels == k),
            calibration=SCALE,
            center=((K - 1) / 2, (K - 1) / 2),
            s_max=float(prof.s[-1]),
        )
        off = np.abs(plain.intensity - ref) / ref
        assert off[past_beam].max() > 0.05
    with pytest.raises(AnodemapInputError, match="center"):
        averaged_patterns(ds, labels, center=(47.5, 47.5))


# --------------------------------------------------------------- azimuthal average
def _peak(profile):
    """Peak position refined by a parabola through the top three bins."""
    s, i = profile.s, profile.intensity
    k = int(np.argmax(i))
    a, b, c = i[k - 1], i[k], i[k + 1]
    return s[k] + 0.5 * (a - c) / (a - 2 * b + c) * (s[1] - s[0])


def test_azimuthal_average_peaks_at_the_ring(sim):
    data, truth = sim
    ds = calibrated(data)
    beam = find_direct_beam(ds, radius=RADIUS)
    s_ring = RING_PX * SCALE  # 0.30 1/Å
    per_pattern = azimuthal_average(ds, center=beam, s_max=0.45)
    assert per_pattern.intensity.shape == (6, 8, per_pattern.s.size)
    assert per_pattern.s[1] - per_pattern.s[0] == pytest.approx(SCALE)
    mean_profile = per_pattern.intensity.mean(axis=(0, 1))
    outer = per_pattern.s > 0.2  # past the beam and its halo
    prof = type(per_pattern)(per_pattern.s[outer], mean_profile[outer], per_pattern.calibration)
    assert _peak(prof) == pytest.approx(s_ring, abs=0.25 * SCALE)
    # the averaged (descan-corrected) pattern gives the same ring
    avg = mean_pattern(ds, center=beam)
    one = azimuthal_average(avg, calibration=ReciprocalCalibration((SCALE, SCALE), "test"))
    sel = one.s > 0.2
    prof = type(one)(one.s[sel], one.intensity[sel], one.calibration)
    assert _peak(prof) == pytest.approx(s_ring, abs=0.5 * SCALE)
    # fixed-centre path (sparse matrix) equals the per-pattern path with equal centres
    c0 = tuple(beam.center[0, 0])
    fixed = azimuthal_average(ds, center=c0, s_max=0.4)
    mapped = azimuthal_average(ds, center=np.broadcast_to(c0, (6, 8, 2)).copy(), s_max=0.4)
    np.testing.assert_allclose(fixed.intensity, mapped.intensity, rtol=1e-10)


def test_azimuthal_average_of_exact_ring_at_known_s():
    cal = ReciprocalCalibration((0.02, 0.02), "test")
    yy, xx = np.mgrid[:128, :128]
    c = (63.3, 64.8)
    s = np.hypot(yy - c[0], xx - c[1]) * 0.02
    pattern = np.exp(-0.5 * ((s - 0.8) / 0.03) ** 2)  # ring at s = 0.8 1/Å (d = 1.25 Å)
    prof = azimuthal_average(pattern, calibration=cal, center=c)
    assert _peak(prof) == pytest.approx(0.8, abs=0.005)
    assert prof.s[-1] <= 62.3 * 0.02 + 1e-12  # full rings only


def test_uncalibrated_and_wrong_rank_are_refused(sim):
    data, _ = sim
    with pytest.raises(AnodemapInputError, match="calibration="):
        azimuthal_average(data)
    with pytest.raises(AnodemapInputError, match="scale="):
        azimuthal_average(Dataset(data, [*calibrated(data).axes[:2], *_px_axes()]))
    with pytest.raises(AnodemapInputError, match="calibration="):
        virtual_bf(data, 0.1, units="1/Å")
    stack = data.reshape(-1, K, K)
    for call in (
        lambda: find_direct_beam(stack),
        lambda: virtual_bf(stack, 5),
        lambda: virtual_images(stack, {"a": Disk(3)}),
        lambda: mean_pattern(stack),
        lambda: azimuthal_average(stack, calibration=SCALE),
    ):
        with pytest.raises(AnodemapInputError, match="ny, nx, ky, kx"):
            call()


def _px_axes():
    return [Axis("ky", K, 1.0, 0.0, "px", False), Axis("kx", K, 1.0, 0.0, "px", False)]


# ------------------------------------------------------------------------ real file
def test_real_blockfile_virtual_bright_field(shared_blo):
    ds = load(shared_blo)
    lazy = load(shared_blo, lazy=True)
    assert ds.data.shape == (3, 2, 144, 144)
    beam = find_direct_beam(lazy)
    assert isinstance(beam, DirectBeam)
    assert (beam.status == Status.OK).all()
    # the beam sits within a pixel of (72, 73) in every pattern of this file
    assert np.abs(beam.center - np.array([72.1, 73.25])).max() < 1.0
    vbf = virtual_bf(lazy, 6.0, center=beam)
    assert vbf.shape == (3, 2)
    ref = reference_masked_blo(ds.data.astype(float), beam.center, 6.0)
    np.testing.assert_allclose(vbf, ref, rtol=1e-12)
    adf = virtual_adf(ds, 0.4, 2.0, units="1/Å", center=beam)  # nominal calibration
    assert adf.shape == (3, 2) and np.all(adf > vbf)
    out = image_dataset(ds, vbf, "virtual bright field")
    assert [a.units for a in out.axes] == ["nm", "nm"]
    assert out.data.shape == (3, 2) and out.title == "virtual bright field"


def reference_masked_blo(data, centers, r):
    yy, xx = np.mgrid[: data.shape[2], : data.shape[3]]
    out = np.empty(data.shape[:2])
    for j in np.ndindex(*data.shape[:2]):
        out[j] = data[j][(yy - centers[j][0]) ** 2 + (xx - centers[j][1]) ** 2 <= r * r].sum()
    return out


@pytest.mark.parametrize(("cores", "rows"), [(1, 24), (2, 12), (16, 1)])
def test_patterns_in_memory_cut_into_chunks_for_every_core(monkeypatch, cores, rows):
    """An array in memory is cut into at least two chunks per core (the kernels here run
    one chunk per thread); a lazy one keeps its own chunks; the centres do not depend
    on the cut."""
    import dask.array as da

    from anodemap.diffraction import _data4d

    monkeypatch.setattr(_data4d, "usable_cores", lambda: cores)
    arr = np.zeros((48, 10, 8, 8), np.float32)
    # 48 rows: at least two chunks per core, whole rows, one row at the least
    assert _data4d.chunk_rows(arr, None) == rows
    assert _data4d.chunk_rows(arr, 5) == 5
    assert _data4d.chunk_rows(da.from_array(arr, chunks=(16, 10, 8, 8)), None) == 16


def test_direct_beam_the_same_however_the_scan_is_cut(sim):
    data = sim[0]
    whole = find_direct_beam(data, rows_per_chunk=data.shape[0])
    for rows in (None, 1, 4):
        cut = find_direct_beam(data, rows_per_chunk=rows)
        np.testing.assert_array_equal(whole.center, cut.center)
