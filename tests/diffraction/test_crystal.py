"""Crystal structures, CIF reading, electron scattering factors and structure factors."""

from __future__ import annotations

import dataclasses
import itertools
import warnings

import numpy as np
import pytest

from anodemap.diffraction.crystal import (
    AtomSite,
    CifError,
    Crystal,
    available_phases,
    electron_scattering_factor,
    electron_wavelength,
    format_symop,
    load_phase,
    lorentz_gamma,
    parse_symop,
    read_cif,
    scattering_elements,
    structure_path,
    write_cif,
)
from anodemap.errors import AnodemapInputError


def _without_dw(c: Crystal) -> Crystal:
    sites = tuple(dataclasses.replace(s, b_iso=0.0) for s in c.sites)
    return dataclasses.replace(c, sites=sites, _cache={})


def _box(n: int) -> np.ndarray:
    r = np.arange(-n, n + 1)
    hkl = np.array(list(itertools.product(r, r, r)))
    return hkl[np.any(hkl != 0, axis=1)]


# ---- data files ------------------------------------------------------------------------


def test_packaged_phases_and_sources():
    assert {"Si", "Li15Si4"} <= set(available_phases())
    si, li = load_phase("Si"), load_phase("Li15Si4")
    assert si.cell[:3] == (5.431, 5.431, 5.431)
    assert li.cell[0] == pytest.approx(10.6322)
    assert "Deutsch" in si.source and "Zeilinger" in li.source and "mp-569849" in li.source
    assert "MODEL CHOICE" in li.source  # the displacement parameters are labelled as such
    assert si.space_group == "F d -3 m" and li.space_group == "I -4 3 d"


def test_scattering_factor_table():
    assert {"Li", "O", "Si"} <= set(scattering_elements())
    # f(0) is the sum of the a_i of Peng et al. (1996): Si 5.8268 A, Li 3.2855 A, O 1.9834 A
    for el, f0 in (("Si", 5.8268), ("Li", 3.2855), ("O", 1.9834)):
        assert float(electron_scattering_factor(el, 0.0)) == pytest.approx(f0, abs=1e-4)
    # the two published fits agree where both apply: the step at the switch s = 4 1/A (the
    # end of the s <= 2 fit, sin(theta)/lambda = 2) is below 0.5 % of f(0)
    for el in scattering_elements():
        below = float(electron_scattering_factor(el, 3.999))
        above = float(electron_scattering_factor(el, 4.001))
        assert abs(above - below) < 5e-3 * float(electron_scattering_factor(el, 0.0))
    s = np.linspace(0, 6, 50)
    assert np.all(np.diff(electron_scattering_factor("Si", s)) < 0)
    with pytest.raises(AnodemapInputError, match="Xx"):
        electron_scattering_factor("Xx", 0.1)


def test_relativistic_wavelength_and_gamma():
    # 300 kV: 1.9687 pm, 200 kV: 2.5079 pm (standard tabulated values)
    assert electron_wavelength(300) == pytest.approx(0.019687, abs=2e-6)
    assert electron_wavelength(200) == pytest.approx(0.025079, abs=2e-6)
    assert lorentz_gamma(300) == pytest.approx(1 + 300 / 510.99895, rel=1e-9)
    si = load_phase("Si")
    F0 = si.structure_factor([[1, 1, 1]])
    F300 = si.structure_factor([[1, 1, 1]], beam_energy_kv=300)
    assert abs(F300[0]) / abs(F0[0]) == pytest.approx(lorentz_gamma(300))


# ---- silicon ---------------------------------------------------------------------------


def test_si_d_spacings():
    si = load_phase("Si")
    d = si.d_spacing([[1, 1, 1], [2, 2, 0], [3, 1, 1], [4, 0, 0], [3, 3, 1]])
    np.testing.assert_allclose(d, [3.1356, 1.9201, 1.6375, 1.3578, 1.2460], atol=1e-4)
    assert si.volume == pytest.approx(5.431**3)


def test_si_unit_cell_and_symmetry():
    si = load_phase("Si")
    els, frac, occ, b = si.unit_cell()
    assert len(els) == 8 and set(els) == {"Si"}
    expected = {
        (0, 0, 0),
        (0, 2, 2),
        (2, 0, 2),
        (2, 2, 0),
        (1, 1, 1),
        (1, 3, 3),
        (3, 1, 3),
        (3, 3, 1),
    }
    assert {tuple(np.round(f * 4).astype(int) % 4) for f in frac} == expected
    assert si.laue_group == "m-3m"
    assert len(si.point_group_rotations()) == 24


def test_si_allowed_and_forbidden_reflections():
    si = load_phase("Si")
    F = np.abs(si.structure_factor([[2, 0, 0], [2, 2, 2], [1, 0, 0], [1, 1, 0], [4, 2, 0]]))
    assert np.all(F < 1e-9)  # 200, 222 (kinematically forbidden), 100, 110, 420
    F = np.abs(si.structure_factor([[1, 1, 1], [2, 2, 0], [3, 1, 1], [4, 0, 0]]))
    assert np.all(F > 1.0)
    refl = si.reflections(s_max=1.2)
    h = np.abs(refl.hkl)
    mixed = (h % 2).sum(axis=1) % 3 != 0
    even_bad = ((h % 2).sum(axis=1) == 0) & (h.sum(axis=1) % 4 == 2)
    assert not mixed.any() and not even_bad.any()
    assert np.all(refl.s <= 1.2) and np.all(np.diff(refl.s) >= -1e-12)


def test_si_structure_factor_against_diamond_formula():
    """|F| of the diamond structure is 4*sqrt(2) f (h,k,l odd) or 8 f (h+k+l = 4n)."""
    si = load_phase("Si")
    hkl = np.array([[1, 1, 1], [2, 2, 0], [3, 1, 1], [4, 0, 0], [3, 3, 1], [4, 2, 2]])
    s = 1.0 / si.d_spacing(hkl)
    f = electron_scattering_factor("Si", s) * np.exp(-0.4632 * s**2 / 4)
    multiplier = np.where(hkl[:, 0] % 2 == 1, 4 * np.sqrt(2), 8.0)
    np.testing.assert_allclose(np.abs(si.structure_factor(hkl)), multiplier * f, rtol=1e-10)


def test_structure_factor_against_diffsims():
    """Independent code and parametrisation (diffsims, Lobato & Van Dyck 2014), B = 0."""
    pytest.importorskip("diffsims")
    pytest.importorskip("orix")
    from diffsims.crystallography import ReciprocalLatticeVector
    from orix.crystal_map import Phase

    for name in ("Si", "Li15Si4"):
        crystal = _without_dw(load_phase(name))
        refl = crystal.reflections(s_max=1.2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            phase = Phase.from_cif(str(structure_path(name)))
            for atom in phase.structure:
                atom.Bisoequiv = 0.0
            rlv = ReciprocalLatticeVector(phase, hkl=refl.hkl)
            rlv.sanitise_phase()
            rlv.calculate_structure_factor(scattering_params="lobato")
        ours, theirs = np.abs(refl.structure_factor), np.abs(rlv.structure_factor)
        strong = ours > 0.1 * ours.max()
        # Peng (1996) and Lobato (2014) differ by a fraction of a percent
        np.testing.assert_allclose(ours[strong], theirs[strong], rtol=0.01)
        np.testing.assert_allclose(
            ours**2 / ours.max() ** 2, theirs**2 / theirs.max() ** 2, atol=0.005
        )


def test_cif_files_read_by_orix_give_the_same_cell():
    """diffpy.structure (through orix) expands our CIFs to the same atoms."""
    pytest.importorskip("orix")
    from orix.crystal_map import Phase

    for name, n_atoms, sg in (("Si", 8, "Fd-3m"), ("Li15Si4", 76, "I-43d")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            phase = Phase.from_cif(str(structure_path(name)))
        assert len(phase.structure) == n_atoms
        assert phase.space_group.short_name == sg
        ours = load_phase(name).unit_cell()[1]
        theirs = np.array(phase.structure.xyz) % 1.0
        diff = ours[:, None, :] - theirs[None, :, :]
        diff -= np.round(diff)
        assert np.linalg.norm(diff, axis=2).min(axis=1).max() < 1e-4


# ---- Li15Si4 ---------------------------------------------------------------------------


def _i43d_absent(h: np.ndarray) -> bool:
    """Reflection conditions of I-43d (International Tables A, No. 220), |indices|."""
    h = [abs(int(x)) for x in h]
    if sum(h) % 2:
        return True  # hkl: h+k+l = 2n
    for i in range(3):
        j, k = (x for x in range(3) if x != i)
        if h[j] == 0 and h[k] == 0 and h[i] % 4:
            return True  # h00: h = 4n
        if h[j] == h[k] and (2 * h[j] + h[i]) % 4:
            return True  # hhl: 2h + l = 4n
    return False


def test_li15si4_cell_content():
    li = load_phase("Li15Si4")
    els, frac, occ, b = li.unit_cell()
    assert (els == "Li").sum() == 60 and (els == "Si").sum() == 16  # Z = 4 Li15Si4
    assert li.laue_group == "m-3m"
    # shortest Li-Si and Si-Si distances are physical (isolated Si, Li-Si about 2.6-2.9 A)
    cart = frac @ li.lattice_matrix
    si = cart[els == "Si"]
    lat = li.lattice_matrix
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3))) @ lat
    d_sisi = np.linalg.norm(si[:, None, None] - si[None, :, None] - shifts[None, None], axis=-1)
    d_sisi[d_sisi < 1e-6] = np.inf
    assert d_sisi.min() > 4.0  # Si atoms are isolated in Li15Si4
    lis = cart[els == "Li"]
    d_lisi = np.linalg.norm(lis[:, None, None] - si[None, :, None] - shifts[None, None], axis=-1)
    assert 2.5 < d_lisi.min() < 2.8


def test_li15si4_absences_emerge_from_the_structure():
    li = load_phase("Li15Si4")
    hkl = _box(8)
    F = np.abs(li.structure_factor(hkl))
    predicted = np.array([_i43d_absent(h) for h in hkl])
    assert np.all(F[predicted] < 1e-6 * F.max())
    assert np.all(F[~predicted] > 1e-6 * F.max())  # no accidental absences in this range
    listed = li.reflections(s_max=0.9)
    assert not any(_i43d_absent(h) for h in listed.hkl)
    # the lowest-angle reflection is 211 (110 and 200 are absent)
    assert sorted(np.abs(listed.hkl[0])) == [1, 1, 2]
    assert listed.d[0] == pytest.approx(10.6322 / np.sqrt(6))


# ---- CIF -------------------------------------------------------------------------------


def _rocksalt_ops() -> list[str]:
    ops = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            for i, j in enumerate(perm):
                m[i, j] = signs[i]
            for t in ((0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)):
                ops.append(format_symop(m, np.array(t)))
    return ops


def test_user_cif_with_uncertainties_quotes_and_u_iso(tmp_path):
    """A user phase (a test structure, not reference data): rock-salt LiF-like cell."""
    ops = "\n".join(f"  {i + 1} '{op}'" for i, op in enumerate(_rocksalt_ops()))
    text = f"""# test structure written for this test
data_test
_chemical_formula_sum 'Li F'
_symmetry_space_group_name_H-M 'F m -3 m'
_cell_length_a 4.0270(5)
_cell_length_b 4.0270(5)
_cell_length_c 4.0270(5)
_cell_angle_alpha 90.0
_cell_angle_beta 90.0
_cell_angle_gamma 90.0
loop_
  _symmetry_equiv_pos_site_id
  _symmetry_equiv_pos_as_xyz
{ops}
loop_
  _atom_site_label
  _atom_site_type_symbol
  _atom_site_fract_x
  _atom_site_fract_y
  _atom_site_fract_z
  _atom_site_U_iso_or_equiv
  Li1 Li+ 0.0 0.0 0.0 0.0127(3)
  F1 F- 0.5 0.5 0.5 0.0080
"""
    path = tmp_path / "lif.cif"
    path.write_text(text)
    c = read_cif(path)
    assert c.name == "LiF" and c.cell[0] == pytest.approx(4.027)
    els, frac, occ, b = c.unit_cell()
    assert (els == "Li").sum() == 4 and (els == "F").sum() == 4
    assert b[els == "Li"][0] == pytest.approx(8 * np.pi**2 * 0.0127)
    assert c.laue_group == "m-3m"
    hkl = np.array([[1, 1, 1], [2, 0, 0], [1, 0, 0]])
    s = 1 / c.d_spacing(hkl)
    f_li = electron_scattering_factor("Li", s) * np.exp(-b[els == "Li"][0] * s**2 / 4)
    f_f = electron_scattering_factor("F", s) * np.exp(-b[els == "F"][0] * s**2 / 4)
    F = c.structure_factor(hkl)
    assert abs(F[0]) == pytest.approx(4 * abs(f_li[0] - f_f[0]), rel=1e-9)
    assert abs(F[1]) == pytest.approx(4 * (f_li[1] + f_f[1]), rel=1e-9)
    assert abs(F[2]) < 1e-9

    # round trip: write, read back, same atoms and structure factors
    back = read_cif(write_cif(c, tmp_path / "out.cif"))
    assert back.cell == pytest.approx(c.cell)
    np.testing.assert_allclose(back.structure_factor(hkl), F, atol=1e-9)
    assert len(back.unit_cell()[0]) == 8


def test_round_trip_of_packaged_phases(tmp_path):
    for name in ("Si", "Li15Si4"):
        c = load_phase(name)
        back = read_cif(write_cif(c, tmp_path / f"{name}.cif"))
        hkl = _box(3)
        np.testing.assert_allclose(back.structure_factor(hkl), c.structure_factor(hkl), atol=1e-5)
        assert back.source == c.source


def test_missing_displacement_parameter_warns(tmp_path):
    path = tmp_path / "p1.cif"
    path.write_text(
        "data_x\n_symmetry_space_group_name_H-M 'P 1'\n"
        "_cell_length_a 3\n_cell_length_b 3\n_cell_length_c 3\n"
        "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
        "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
        "Si1 0 0 0\n"
    )
    with pytest.warns(UserWarning, match="model choice"):
        c = read_cif(path)
    assert c.laue_group == "-1" and c.sites[0].element == "Si"


GOOD_CELL = (
    "_cell_length_a 3\n_cell_length_b 3\n_cell_length_c 3\n"
    "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
)
GOOD_OPS = "loop_\n_space_group_symop_operation_xyz\n'x,y,z'\n'-x,-y,-z'\n"
GOOD_ATOMS = (
    "loop_\n_atom_site_label\n_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
    "_atom_site_B_iso_or_equiv\nSi1 0.1 0.2 0.3 0.5\n"
)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("data_x\n" + GOOD_OPS + GOOD_ATOMS, "_cell_length_a is missing"),
        (
            "data_x\n" + GOOD_CELL + GOOD_ATOMS.replace("_atom_site_label", "_atom_site_label"),
            "no symmetry operations",
        ),
        ("data_x\n" + GOOD_CELL + GOOD_OPS, "no atom sites"),
        (
            "data_x\n" + GOOD_CELL + GOOD_OPS + GOOD_ATOMS.replace("0.3 0.5", "0.3"),
            "not a multiple",
        ),
        (
            "data_x\n" + GOOD_CELL + GOOD_OPS.replace("'-x,-y,-z'", "'-x,-q,-z'"),
            "symmetry operation",
        ),
        ("data_x\n" + GOOD_CELL + GOOD_OPS + GOOD_ATOMS.replace("Si1", "Xx1"), "Xx1"),
        (
            "data_x\n"
            + GOOD_CELL.replace("_cell_length_b 3", "_cell_length_b abc")
            + GOOD_OPS
            + GOOD_ATOMS,
            "not a number",
        ),
        ("just some text\n", "no 'data_' block"),
        ("data_x\n;\nunclosed text field\n", "never closed"),
    ],
)
def test_bad_cif_errors_name_file_and_problem(tmp_path, text, problem):
    path = tmp_path / "bad.cif"
    path.write_text(text)
    with pytest.raises(CifError) as info:
        read_cif(path)
    message = str(info.value)
    assert str(path) in message and problem in message
    assert isinstance(info.value, ValueError)  # CifError is an AnodemapInputError


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CifError, match="cannot read"):
        read_cif(tmp_path / "nothere.cif")
    with pytest.raises(AnodemapInputError, match="packaged phases"):
        load_phase("Unobtainium")


# ---- symmetry and crystal API ------------------------------------------------------------


def test_symop_parse_and_format_round_trip():
    for op in ("x,y,z", "-y+1/4,x+3/4,-z+1/4", "x-y,x,z+1/6", "-x+1/2,-y,z+1/2", "1/2+x,y,-z"):
        r, t = parse_symop(op)
        r2, t2 = parse_symop(format_symop(r, t))
        np.testing.assert_array_equal(r, r2)
        np.testing.assert_allclose(t % 1, t2 % 1)
    with pytest.raises(AnodemapInputError):
        parse_symop("x,y")
    with pytest.raises(AnodemapInputError):
        parse_symop("2x,y,z")  # not an isometry


def test_laue_group_of_lower_symmetry():
    # tetragonal: 4/mmm from the 16 signed permutations that keep z along z
    rots = []
    for perm in ((0, 1), (1, 0)):
        for sx, sy, sz in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            m[0, perm[0]], m[1, perm[1]], m[2, 2] = sx, sy, sz
            rots.append(m)
    site = (AtomSite("Si1", "Si", (0.1, 0.2, 0.3), 1.0, 0.5),)
    tet = Crystal("tet", (4, 4, 6, 90, 90, 90), np.array(rots), np.zeros((16, 3)), site)
    assert tet.laue_group == "4/mmm" and len(tet.point_group_rotations()) == 8
    hexa_r = [parse_symop(op)[0] for op in ("x,y,z", "-y,x-y,z", "-x+y,-x,z")]
    hexa = Crystal("hex", (3, 3, 5, 90, 90, 120), np.array(hexa_r), np.zeros((3, 3)), site)
    assert hexa.laue_group == "-3"
    # the hexagonal metric: d(100) = a * sqrt(3) / 2
    assert hexa.d_spacing([1, 0, 0])[0] == pytest.approx(3 * np.sqrt(3) / 2)


def test_with_cell_rescales_d_spacings():
    li = load_phase("Li15Si4")
    warm = li.with_cell(10.70)
    assert warm.d_spacing([2, 1, 1])[0] / li.d_spacing([2, 1, 1])[0] == pytest.approx(
        10.70 / 10.6322
    )
    assert warm.sites == li.sites
    with pytest.raises(AnodemapInputError):
        li.with_cell(1.0, 2.0)
