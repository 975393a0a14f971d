"""Generate ``src/anodemap/data/xray_lines.csv``: X-ray line energies and weights.

Run once, by hand, when the table should change (anodemap does not need xraylib)::

    python -m venv /tmp/xr && /tmp/xr/bin/pip install xraylib xraydb
    /tmp/xr/bin/python tools/make_xray_lines.py > src/anodemap/data/xray_lines.csv

Source: xraylib (T. Schoonjans et al., "The xraylib library for X-ray-matter
interactions. Recent developments", Spectrochim. Acta B 66 (2011) 776-784;
https://github.com/tschoonj/xraylib), whose tables give
- line energies (``LineEnergy``: Deslattes et al., Rev. Mod. Phys. 75 (2003) 35, where
  tabulated, Bearden, Rev. Mod. Phys. 39 (1967) 78 otherwise),
- radiative transition rates (``RadRate``: Krause, J. Phys. Chem. Ref. Data 8 (1979)
  307 and Scofield's calculations, as compiled by xraylib),
- fluorescence yields (``FluorYield``) and Coster-Kronig probabilities
  (``CosKronTransProb``: Krause 1979; Campbell 2003 for L shells),
- edge energies (``EdgeEnergy``), subshell occupancies (``ElectronConfig``) and
  atomic weights (``AtomicWeight``).
Li and Be (no K lines in xraylib): from the Elam tables (W. T. Elam, B. D. Ravel and
J. R. Sieber, Radiat. Phys. Chem. 63 (2002) 121-128) in the xraydb package: Be Ka
108.5 eV; Li has only KL1 there, 49.4 eV (Li K emission of a solid is a valence band,
about 50-55 eV wide, rarely seen in EDX).

What is computed here (a model, labelled as such in the file): a line's weight relative
to the main line of its family (Ka, La, Ma = 1). Within one shell family the lines
start from different subshells (L1, L2, L3; M1..M5), so the weight of a line from
subshell i is  V_i * omega_i * R_line,  with R the radiative rate (the share of the
radiative decays of subshell i that give this line), omega_i the fluorescence yield and
V_i the vacancies in subshell i after Coster-Kronig transfers
(V_j = sigma_j + sum_{i<j} f_ij V_i). The primary ionisations sigma_i by fast electrons
follow Bethe's asymptotic cross-section, sigma_i ~ n_i ln(U_i) / (U_i E_i^2) with n_i the
subshell's electrons, E_i its edge energy and U_i = E0 / E_i, evaluated at E0 = 200 keV
(the paper's microscope). A line named as several transitions (Ka = KL2 + KL3) has the
sum of their weights and their weight-averaged energy.
"""

from __future__ import annotations

import math
import sys

import xraydb
import xraylib as xl

E0_KEV = 200.0
MIN_WEIGHT = 1e-3  # lines weaker than this (relative to their family's main line) are left out

# exspy's line names (Siegbahn), each as the IUPAC transitions it stands for
FAMILIES = {
    "K": {
        "Ka": ["KL2", "KL3"],
        "Kb": ["KM2", "KM3", "KM4", "KM5"],
        "Kb2": ["KN2", "KN3"],
    },
    "L": {
        "La": ["L3M4", "L3M5"],
        "Lb1": ["L2M4"],
        "Lb2": ["L3N4", "L3N5"],
        "Lb3": ["L1M3"],
        "Lb4": ["L1M2"],
        "Lb6": ["L3N1"],
        "Lg1": ["L2N4"],
        "Lg2": ["L1N2"],
        "Lg3": ["L1N3"],
        "Ll": ["L3M1"],
        "Ln": ["L2M1"],
    },
    "M": {
        "Ma": ["M5N6", "M5N7"],
        "Mb": ["M4N6"],
        "Mg": ["M3N5"],
        "Mz": ["M4N2", "M5N3"],
        "M2N4": ["M2N4"],
        "M3O4": ["M3O4"],
        "M3O5": ["M3O5"],
    },
}
SUBSHELLS = {"K": ["K"], "L": ["L1", "L2", "L3"], "M": ["M1", "M2", "M3", "M4", "M5"]}
MAIN = {"K": "Ka", "L": "La", "M": "Ma"}
Z_RANGE = range(3, 96)


def _try(f, *args) -> float:
    try:
        return float(f(*args))
    except ValueError:
        return 0.0


def _ck(z: int, shell: str, i: int, j: int) -> float:
    name = f"F{shell}{i}{j}_TRANS"
    return _try(xl.CosKronTransProb, z, getattr(xl, name)) if hasattr(xl, name) else 0.0


def vacancies(z: int, shell: str) -> dict[str, float]:
    """Vacancies per subshell after Coster-Kronig transfers, for 200 keV electrons."""
    subs = SUBSHELLS[shell]
    sigma = []
    for s in subs:
        n = _try(xl.ElectronConfig, z, getattr(xl, f"{s}_SHELL"))
        e = _try(xl.EdgeEnergy, z, getattr(xl, f"{s}_SHELL"))
        u = E0_KEV / e if e > 0 else 0.0
        sigma.append(n * math.log(u) / (u * e * e) if u > 1 else 0.0)
    v = list(sigma)
    for j in range(len(subs)):
        for i in range(j):
            v[j] += _ck(z, shell, i + 1, j + 1) * v[i]
    return dict(zip(subs, v, strict=True))


def lines_of(z: int) -> list[tuple[str, str, float, float]]:
    rows = []
    for shell, names in FAMILIES.items():
        vac = vacancies(z, shell)
        found = {}
        for name, transitions in names.items():
            total, e_sum = 0.0, 0.0
            for t in transitions:
                macro = getattr(xl, f"{t}_LINE", None)
                if macro is None:
                    continue
                energy = _try(xl.LineEnergy, z, macro)
                rate = _try(xl.RadRate, z, macro)
                start = t[:2] if shell != "K" else "K"
                omega = _try(xl.FluorYield, z, getattr(xl, f"{start}_SHELL"))
                w = vac.get(start, 0.0) * omega * rate
                if energy > 0 and w > 0:
                    total += w
                    e_sum += w * energy
            if total > 0:
                found[name] = (e_sum / total, total)
        main = MAIN[shell]
        if main not in found:
            continue
        ref = found[main][1]
        for name, (energy, w) in found.items():
            if w / ref >= MIN_WEIGHT:
                rows.append((shell, name, energy, w / ref))
    return rows


def main() -> None:
    out = sys.stdout
    out.write(__doc__.split("\n\n", 1)[0].replace('"""', "").strip().join(["# ", "\n"]))
    for para in __doc__.split("\n\n")[2:]:
        if para.strip().startswith("python") or para.strip().startswith("/tmp"):
            continue
        for line in para.strip().splitlines():
            out.write(f"# {line.strip()}\n")
        out.write("#\n")
    out.write(
        f"# Generated by tools/make_xray_lines.py with xraylib {xl.__version__}, "
        f"xraydb {xraydb.__version__}.\n"
    )
    out.write("# Columns: element, Z, family (K/L/M), line (exspy's names), energy_keV,\n")
    out.write("# weight (relative to the family's main line; computed, see above), atomic_weight\n")
    out.write("element,Z,family,line,energy_keV,weight,atomic_weight\n")
    for z in Z_RANGE:
        sym = xl.AtomicNumberToSymbol(z)
        aw = xl.AtomicWeight(z)
        rows = lines_of(z)
        if not rows:  # Li, Be: the Elam table (xraydb), all K lines as one Ka
            k = xraydb.xray_lines(z, "K")
            total = sum(v.intensity for v in k.values())
            energy = sum(v.energy * v.intensity for v in k.values()) / total / 1e3
            rows = [("K", "Ka", energy, 1.0)]
        for shell, name, energy, w in rows:
            out.write(f"{sym},{z},{shell},{name},{energy:.5f},{w:.5g},{aw:.4f}\n")


if __name__ == "__main__":
    main()
