"""Build the simulator's amorphous-silicon model: a continuous random network (CRN).

Run once, by hand, when the model should change (anodemap never runs it: the result is
packaged data, read by :func:`anodemap.synth.crn.load_asi_crn`)::

    python tools/make_asi_crn.py            # writes src/anodemap/data/a_si_crn_1000.json
    python tools/make_asi_crn.py --melt 2 --anneal 5 --dry-run   # try the code quickly

Method (Wooten, Winer and Weaire, Phys. Rev. Lett. 54 (1985) 1392, "WWW"; in the faster
form of G. T. Barkema and N. Mousseau, Phys. Rev. B 62 (2000) 4985):

* Start: diamond Si, 5 x 5 x 5 conventional cells (1000 atoms, four bonds each), scaled
  to the a-Si number density the simulator uses, 1.8 % below c-Si (J. S. Custer et al.,
  Appl. Phys. Lett. 64 (1994) 437) with a = 5.431 Å for c-Si.
* Energy: the Keating potential (P. N. Keating, Phys. Rev. 145 (1966) 637) on the bond
  graph, in the form and with the parameters of Barkema and Mousseau (2000)::

      E = 3α/(16 d²) Σ_bonds (r_ij·r_ij - d²)² + 3β/(8 d²) Σ_angles (r_ij·r_ik + d²/3)²

  α = 2.965 eV/Å², β = 0.285 α, d = 2.35 Å. Only bonded pairs and bond angles carry
  energy: the graph, not distances, says who is bonded (every atom keeps four bonds).
* Move (WWW bond switch): bonded i-j, k a neighbour of i and l a neighbour of j (k, l, i,
  j distinct, k not bonded to j, l not bonded to i); bonds i-k and j-l become i-l and
  j-k. Switches that would make a three-membered ring are refused (as in WWW).
* After each switch the atoms within ``LOCAL_DEPTH`` bonds of the four are relaxed (FIRE:
  E. Bitzek et al., Phys. Rev. Lett. 97 (2006) 170201) with the rest of the network held
  (Barkema and Mousseau: local relaxation per switch). The local energy change
  overestimates the true one by 0.6-0.8 eV on average (measured here: the long-range
  elastic relaxation), so a switch whose local change comes within ``FULL_MARGIN`` eV of
  acceptance is decided on a relaxation of the whole network; the Metropolis rule at
  temperature kT decides on that energy change. The Metropolis number is drawn first, so
  that a relaxation that cannot reach it stops early (Barkema and Mousseau's idea; here a
  heuristic: see ``_fire``).
* Non-bonded atoms: the Keating energy has none, and at high kT atoms then pass through
  each other; a harmonic repulsion between non-bonded atoms closer than 3.0 Å (model
  choice) keeps them apart.
* Schedule (model choices, ``PHASES``): a "melt" at kT = 2.5 eV wipes out the crystal,
  kT then falls geometrically to 0.5 eV and on to 0.1 eV; the whole network is relaxed
  every ``CHUNK_PER_ATOM`` tries per atom and at the end to a largest force below
  ``FINAL_FMAX`` eV/Å.

The script prints the model's statistics (bond lengths and angles from the graph,
coordination and pair-distribution peaks from distances, density, the Debye-sum structure
factor and its first sharp diffraction peak, the strongest remaining {111} Bragg
component) and writes them, with the positions, bonds and this provenance, to
``src/anodemap/data/a_si_crn_1000.json`` and a short ``a_si_crn_1000.md`` beside it.
The numba kernels are deterministic: one seed gives one network (on one platform).
"""

# numba's nopython mode offers only the legacy np.random functions (seeded by
# np.random.seed inside the compiled code), hence:
# ruff: noqa: NPY002

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numba
import numpy as np
from scipy.spatial import cKDTree

#: c-Si lattice parameter, Å (the packaged Si structure; e.g. CRC Handbook: 5.431 Å).
A_SI = 5.431
#: a-Si is 1.8 % less dense than c-Si (Custer et al., Appl. Phys. Lett. 64 (1994) 437).
DENSITY_DEFICIT = 0.018
#: Si molar mass, g/mol (IUPAC standard atomic weight 28.085, conventional 28.0855).
M_SI = 28.0855
#: Avogadro constant / 1e24 (exact), so that atoms/Å³ * M / N_A gives g/cm³.
N_A_E24 = 0.602214076
#: Keating parameters for Si (Barkema and Mousseau, Phys. Rev. B 62 (2000) 4985).
KEATING_ALPHA = 2.965  # eV/Å²
KEATING_BETA_OVER_ALPHA = 0.285
KEATING_D = 2.35  # Å
#: Conventional cubic cells per edge (5: 1000 atoms, a box of 27.3 Å, as the simulator's
#: default 1000-atom models; pair histograms reach half the box, 13.6 Å).
N_CELLS = 5
#: Non-bonded repulsion (model choice: the Keating energy has no term for non-bonded
#: atoms, which may then pass through each other): E = k (r_rep - r)² for non-bonded pairs
#: closer than r_rep, with k of the order of the Keating bond stiffness and r_rep inside
#: the gap between the first (2.35 Å) and second (3.84 Å) neighbour shells of a-Si.
REPULSION_K = 3.0  # eV/Å²
REPULSION_RANGE = 3.0  # Å
#: Model choices of the WWW run (see the module docstring). Tries per atom and kT (eV) of
#: each phase; kT falls geometrically within a phase.
SEED = 0
PHASES = (("melt", 30.0, 2.5, 2.5), ("quench", 50.0, 2.5, 0.5), ("anneal", 1500.0, 0.5, 0.1))
LOCAL_DEPTH = 2
CHUNK_PER_ATOM = 2.0  # tries per atom between full relaxations
LOCAL_FMAX = 0.02  # eV/Å
FULL_MARGIN = 1.0  # eV: local energy changes this close to acceptance get a full relaxation
FINAL_FMAX = 1e-4  # eV/Å
VERLET_SKIN = 1.0  # Å
_VERLET_MAX = 128
#: Distance below which two atoms count as neighbours for the coordination (Å): the
#: minimum of g(r) between the first two shells lies at 2.7-3.0 Å in a-Si.
COORD_CUTOFF = 2.8

OUT_JSON = Path(__file__).resolve().parents[1] / "src/anodemap/data/a_si_crn_1000.json"


# --------------------------------------------------------------------------------------
# Kernels (numba). par = [ka, kb, d², k_rep, r_rep]: Keating bond and angle constants,
# the non-bonded repulsion's stiffness and range.
# --------------------------------------------------------------------------------------
@numba.njit(cache=True)
def _mic(x: float, box: float) -> float:
    return x - box * np.rint(x / box)


@numba.njit(cache=True)
def _has(nb, i, j):
    for q in range(4):
        if nb[i, q] == j:
            return True
    return False


@numba.njit(cache=True)
def _acc(grad, row, g, x, y, z):
    """grad[row] += g (x, y, z) for a mobile atom (row >= 0)."""
    if row >= 0:
        grad[row, 0] += g * x
        grad[row, 1] += g * y
        grad[row, 2] += g * z


@numba.njit(cache=True)
def _energy_grad(pos, box, nb, bonds, nbond, angles, nang, mob, nmob, loc, vl, vc, grad, par):
    """Energy of the listed Keating terms plus the repulsion of the mobile atoms (loc >= 0)
    from their non-bonded Verlet neighbours; gradient on the mobile atoms."""
    ka, kb, d2, krep, rrep = par[0], par[1], par[2], par[3], par[4]
    grad[:] = 0.0
    e = 0.0
    for t in range(nbond):
        i = bonds[t, 0]
        j = bonds[t, 1]
        dx = _mic(pos[j, 0] - pos[i, 0], box)
        dy = _mic(pos[j, 1] - pos[i, 1], box)
        dz = _mic(pos[j, 2] - pos[i, 2], box)
        c = dx * dx + dy * dy + dz * dz - d2
        e += ka * c * c
        g = 4.0 * ka * c
        _acc(grad, loc[j], g, dx, dy, dz)
        _acc(grad, loc[i], -g, dx, dy, dz)
    third = d2 / 3.0
    for t in range(nang):
        j = angles[t, 0]
        c0 = angles[t, 1]
        k = angles[t, 2]
        ax = _mic(pos[j, 0] - pos[c0, 0], box)
        ay = _mic(pos[j, 1] - pos[c0, 1], box)
        az = _mic(pos[j, 2] - pos[c0, 2], box)
        bx = _mic(pos[k, 0] - pos[c0, 0], box)
        by = _mic(pos[k, 1] - pos[c0, 1], box)
        bz = _mic(pos[k, 2] - pos[c0, 2], box)
        c = ax * bx + ay * by + az * bz + third
        e += kb * c * c
        g = 2.0 * kb * c
        _acc(grad, loc[j], g, bx, by, bz)
        _acc(grad, loc[k], g, ax, ay, az)
        _acc(grad, loc[c0], -g, ax + bx, ay + by, az + bz)
    r2max = rrep * rrep
    for a in range(nmob):
        i = mob[a]
        for q in range(vc[i]):
            j = vl[i, q]
            if loc[j] >= 0 and j < i:
                continue  # a pair of two mobile atoms counts once
            dx = _mic(pos[j, 0] - pos[i, 0], box)
            dy = _mic(pos[j, 1] - pos[i, 1], box)
            dz = _mic(pos[j, 2] - pos[i, 2], box)
            r2 = dx * dx + dy * dy + dz * dz
            if r2 >= r2max or _has(nb, i, j):
                continue
            r = math.sqrt(r2)
            e += krep * (rrep - r) ** 2
            g = -2.0 * krep * (rrep - r) / r
            _acc(grad, a, -g, dx, dy, dz)
            _acc(grad, loc[j], g, dx, dy, dz)
    return e


@numba.njit(cache=True)
def _fire(
    pos, box, nb, bonds, nbond, angles, nang, mob, nmob, loc, vl, vc, par, fmax, maxit, e_stop
):
    """Relax the mobile atoms by FIRE (Bitzek et al. 2006); returns the final energy and
    the iterations. Gives up early (model choice, after Barkema and Mousseau's idea of
    deciding a switch before its relaxation ends) when the energy stays so far above
    e_stop that the recent decrease, continued geometrically (ratio 2/3 per 20 steps),
    cannot bring it below: the switch would be refused anyway."""
    grad = np.zeros((nmob, 3))
    vel = np.zeros((nmob, 3))
    # FIRE constants of Bitzek et al. (2006); the time step suits the Keating stiffness
    # (largest force constant about 20 eV/Å², unit masses)
    dt, dtmax, alpha, nplus = 0.05, 0.2, 0.1, 0
    args = (pos, box, nb, bonds, nbond, angles, nang, mob, nmob, loc, vl, vc, grad, par)
    e = _energy_grad(*args)
    e_mark = e
    it = 0
    for it in range(maxit):  # noqa: B007 (the count is returned)
        if it % 20 == 0 and it >= 40:
            if e - e_stop > 2.0 * (e_mark - e) + 0.05:
                break
            e_mark = e
        elif it == 20:
            e_mark = e
        fm = 0.0
        for a in range(nmob):
            fm = max(fm, grad[a, 0] ** 2 + grad[a, 1] ** 2 + grad[a, 2] ** 2)
        if fm < fmax * fmax:
            break
        p = 0.0
        vn = 0.0
        fn = 0.0
        for a in range(nmob):
            for x in range(3):
                p -= vel[a, x] * grad[a, x]
                vn += vel[a, x] ** 2
                fn += grad[a, x] ** 2
        vn = math.sqrt(vn)
        fn = math.sqrt(fn)
        if p > 0.0:
            for a in range(nmob):
                for x in range(3):
                    vel[a, x] = (1.0 - alpha) * vel[a, x] - alpha * grad[a, x] * vn / fn
            nplus += 1
            if nplus > 5:
                dt = min(dt * 1.1, dtmax)
                alpha *= 0.99
        else:
            vel[:] = 0.0
            dt *= 0.5
            alpha = 0.1
            nplus = 0
        for a in range(nmob):
            for x in range(3):
                vel[a, x] -= dt * grad[a, x]
                pos[mob[a], x] += dt * vel[a, x]
        e = _energy_grad(*args)
    for a in range(nmob):
        for x in range(3):
            pos[mob[a], x] %= box
    return e, it


@numba.njit(cache=True)
def _terms(nb, mob, nmob, loc, bonds, angles, mark, stamp):
    """Bonds and angles whose energy depends on the mobile atoms (loc >= 0).

    A bond counts once; angles are those centred on a mobile atom or on a neighbour of one.
    ``mark``/``stamp`` flag the centres already taken without clearing an array per call.
    """
    nbond = 0
    nang = 0
    for a in range(nmob):
        i = mob[a]
        for q in range(4):
            j = nb[i, q]
            if loc[j] < 0 or i < j:
                bonds[nbond, 0] = i
                bonds[nbond, 1] = j
                nbond += 1
    for a in range(nmob):
        i = mob[a]
        for q in range(-1, 4):
            c0 = i if q < 0 else nb[i, q]
            if mark[c0] == stamp:
                continue
            mark[c0] = stamp
            for u in range(4):
                for w in range(u + 1, 4):
                    angles[nang, 0] = nb[c0, u]
                    angles[nang, 1] = c0
                    angles[nang, 2] = nb[c0, w]
                    nang += 1
    return nbond, nang


@numba.njit(cache=True)
def _verlet(pos, box, rlist, vl, vc, ref):
    """Verlet lists: every atom's atoms within rlist (brute force, O(n²): rebuilt only
    when an atom has moved by half the skin); ref keeps the positions at the build."""
    n = pos.shape[0]
    vc[:] = 0
    r2 = rlist * rlist
    for i in range(n):
        ref[i] = pos[i]
        for j in range(i + 1, n):
            dx = _mic(pos[j, 0] - pos[i, 0], box)
            dy = _mic(pos[j, 1] - pos[i, 1], box)
            dz = _mic(pos[j, 2] - pos[i, 2], box)
            if dx * dx + dy * dy + dz * dz < r2:
                if max(vc[i], vc[j]) >= vl.shape[1]:
                    raise ValueError("Verlet list overflow")
                vl[i, vc[i]] = j
                vc[i] += 1
                vl[j, vc[j]] = i
                vc[j] += 1


@numba.njit(cache=True)
def _moved(pos, box, ref, mob, nmob, half_skin):
    for a in range(nmob):
        i = mob[a]
        d2 = 0.0
        for x in range(3):
            d2 += _mic(pos[i, x] - ref[i, x], box) ** 2
        if d2 > half_skin * half_skin:
            return True
    return False


@numba.njit(cache=True)
def _replace(nb, i, old, new):
    for q in range(4):
        if nb[i, q] == old:
            nb[i, q] = new
            return


@numba.njit(cache=True)
def _switch(nb, i, j, k, l):  # noqa: E741
    """Bonds i-k and j-l become i-l and j-k (i-j bonded); (i, j, l, k) undoes it."""
    _replace(nb, i, k, l)
    _replace(nb, k, i, j)
    _replace(nb, j, l, k)
    _replace(nb, l, j, i)


@numba.njit(cache=True)
def _share_neighbour(nb, i, j):
    for q in range(4):
        a = nb[i, q]
        if a == j:
            continue
        for w in range(4):
            if nb[j, w] == a:
                return True
    return False


@numba.njit(cache=True)
def _ball(nb, seeds, depth, loc, mob):
    """Atoms within ``depth`` bonds of the seeds (breadth first); sets loc, returns count."""
    nmob = 0
    for s in seeds:
        if loc[s] < 0:
            loc[s] = nmob
            mob[nmob] = s
            nmob += 1
    start = 0
    for _ in range(depth):
        end = nmob
        for a in range(start, end):
            i = mob[a]
            for q in range(4):
                j = nb[i, q]
                if loc[j] < 0:
                    loc[j] = nmob
                    mob[nmob] = j
                    nmob += 1
        start = end
    return nmob


@numba.njit(cache=True)
def _full_relax(pos, nb, box, par, skin, fmax, maxit):
    """Relax every atom (Verlet lists rebuilt until no atom moved by half the skin)."""
    n = pos.shape[0]
    mob = np.arange(n)
    bonds = np.empty((2 * n, 2), dtype=np.int64)
    angles = np.empty((6 * n, 3), dtype=np.int64)
    nbond, nang = _terms(nb, mob, n, mob, bonds, angles, np.zeros(n, dtype=np.int64), 1)
    vl = np.empty((n, _VERLET_MAX), dtype=np.int64)
    vc = np.zeros(n, dtype=np.int64)
    ref = np.empty((n, 3))
    e = 0.0
    for _ in range(100):
        _verlet(pos, box, par[4] + skin, vl, vc, ref)
        e, _ = _fire(
            pos, box, nb, bonds, nbond, angles, nang, mob, n, mob, vl, vc, par, fmax, maxit, -np.inf
        )
        if not _moved(pos, box, ref, mob, n, 0.5 * skin):
            break
    return e


@numba.njit(cache=True)
def _www(pos, nb, box, seed, ntry, kt0, kt1, depth, par, skin, fmax_local, margin, stats):
    """``ntry`` WWW bond-switch tries at kT falling geometrically from kt0 to kt1 (eV).

    A switch is relaxed locally first (atoms within ``depth`` bonds); when its local energy
    change comes within ``margin`` eV of acceptance, the whole network is relaxed and the
    Metropolis rule is applied to the whole network's energy change (the local change
    overestimates it by 0.6-0.8 eV on average: the long-range elastic relaxation).
    stats (int64[5]) gains [tries, topologies refused, switches accepted, local FIRE steps,
    full relaxations]. Returns the energy change of the accepted switches (eV).
    """
    np.random.seed(seed)
    n = pos.shape[0]
    loc = -np.ones(n, dtype=np.int64)
    mob = np.empty(n, dtype=np.int64)
    bonds = np.empty((4 * n, 2), dtype=np.int64)
    angles = np.empty((6 * n, 3), dtype=np.int64)
    mark = np.zeros(n, dtype=np.int64)
    vl = np.empty((n, _VERLET_MAX), dtype=np.int64)
    vc = np.zeros(n, dtype=np.int64)
    ref = np.empty((n, 3))
    _verlet(pos, box, par[4] + skin, vl, vc, ref)
    stamp = 0
    saved = np.empty((n, 3))
    seeds = np.empty(4, dtype=np.int64)
    every = np.arange(n)
    gbonds = np.empty((2 * n, 2), dtype=np.int64)
    gangles = np.empty((6 * n, 3), dtype=np.int64)
    gmark = np.zeros(n, dtype=np.int64)
    gstamp = 1
    gnb, gna = _terms(nb, every, n, every, gbonds, gangles, gmark, gstamp)
    ggrad = np.empty((n, 3))
    gargs = (pos, box, nb, gbonds, gnb, gangles, gna, every, n, every, vl, vc, ggrad, par)
    e_full = _energy_grad(*gargs)
    de_sum = 0.0
    for t in range(ntry):
        kt = kt0 * (kt1 / kt0) ** (t / max(ntry - 1, 1))
        stats[0] += 1
        i = np.random.randint(n)
        qj = np.random.randint(4)
        j = nb[i, qj]
        k = nb[i, (qj + 1 + np.random.randint(3)) % 4]  # one of the other three
        l = nb[j, np.random.randint(4)]  # noqa: E741 (the name of the WWW papers)
        if l == i or k == l or _has(nb, k, j) or _has(nb, l, i):
            stats[1] += 1
            continue
        u = 1.0 - np.random.random()  # Metropolis number in (0, 1], drawn first (_fire)
        seeds[0], seeds[1], seeds[2], seeds[3] = i, j, k, l
        _switch(nb, i, j, k, l)
        if _share_neighbour(nb, i, l) or _share_neighbour(nb, j, k):
            _switch(nb, i, j, l, k)  # a three-membered ring: undo
            stats[1] += 1
            continue
        # the atoms to relax: within `depth` bonds of the four in the new graph
        nmob = _ball(nb, seeds, depth, loc, mob)
        for a in range(nmob):
            saved[a] = pos[mob[a]]
        # every term that can change (it holds a moved atom or a switched bond) is in the
        # term list of the moved atoms, in the old graph before and the new graph after
        _switch(nb, i, j, l, k)
        stamp += 1
        nbond, nang = _terms(nb, mob, nmob, loc, bonds, angles, mark, stamp)
        grad = np.empty((nmob, 3))
        e_old = _energy_grad(
            pos, box, nb, bonds, nbond, angles, nang, mob, nmob, loc, vl, vc, grad, par
        )
        _switch(nb, i, j, k, l)
        stamp += 1
        nbond, nang = _terms(nb, mob, nmob, loc, bonds, angles, mark, stamp)
        e_new, it = _fire(
            pos,
            box,
            nb,
            bonds,
            nbond,
            angles,
            nang,
            mob,
            nmob,
            loc,
            vl,
            vc,
            par,
            fmax_local,
            2000,
            e_old - kt * math.log(u) + margin,
        )
        stats[3] += it
        threshold = -kt * math.log(u)
        accept = False
        if e_new - e_old < threshold + margin:
            # decide on the whole network: relax every atom, warm-started locally
            stats[4] += 1
            keep = pos.copy()  # the others' old positions; saved has the moved atoms' ones
            gstamp += 1
            gnb, gna = _terms(nb, every, n, every, gbonds, gangles, gmark, gstamp)
            gargs = (pos, box, nb, gbonds, gnb, gangles, gna, every, n, every, vl, vc, ggrad, par)
            e_try, _ = _fire(
                pos,
                box,
                nb,
                gbonds,
                gnb,
                gangles,
                gna,
                every,
                n,
                every,
                vl,
                vc,
                par,
                fmax_local,
                3000,
                e_full + threshold,
            )
            if e_try - e_full < threshold:
                accept = True
                de_sum += e_try - e_full
                e_full = e_try
                if _moved(pos, box, ref, every, n, 0.5 * skin):
                    _verlet(pos, box, par[4] + skin, vl, vc, ref)
                    e_full = _energy_grad(*gargs)
            else:
                pos[:] = keep
        if accept:
            stats[2] += 1
        else:
            for a in range(nmob):
                pos[mob[a]] = saved[a]
            _switch(nb, i, j, l, k)
        for a in range(nmob):
            loc[mob[a]] = -1
    return de_sum


# --------------------------------------------------------------------------------------
# Start, statistics, output
# --------------------------------------------------------------------------------------
def diamond(n_cells: int, a: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Diamond-structure positions (n_cells³ conventional cells of edge a), its four bonds
    per atom, and the box edge."""
    fcc = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    basis = np.vstack([fcc, fcc + 0.25])
    cells = np.stack(np.meshgrid(*[np.arange(n_cells)] * 3, indexing="ij"), -1).reshape(-1, 3)
    pos = ((cells[:, None, :] + basis[None]) * a).reshape(-1, 3)
    box = n_cells * a
    _, nb = cKDTree(pos, boxsize=box).query(pos, k=5)
    return pos, np.ascontiguousarray(nb[:, 1:], dtype=np.int64), box


def _min_image(v: np.ndarray, box: float) -> np.ndarray:
    return v - box * np.round(v / box)


def _parameters(k_rep: float = REPULSION_K) -> np.ndarray:
    d2 = KEATING_D**2
    ka = 3.0 * KEATING_ALPHA / (16.0 * d2)
    kb = 3.0 * KEATING_BETA_OVER_ALPHA * KEATING_ALPHA / (8.0 * d2)
    return np.array([ka, kb, d2, k_rep, REPULSION_RANGE])


def energy(pos: np.ndarray, nb: np.ndarray, box: float, k_rep: float = REPULSION_K) -> float:
    """Energy (eV) of the network: Keating plus the non-bonded repulsion (k_rep = 0:
    Keating alone)."""
    n = len(pos)
    every = np.arange(n)
    bonds = np.empty((2 * n, 2), dtype=np.int64)
    angles = np.empty((6 * n, 3), dtype=np.int64)
    nbond, nang = _terms(nb, every, n, every, bonds, angles, np.zeros(n, np.int64), 1)
    vl = np.empty((n, _VERLET_MAX), dtype=np.int64)
    vc = np.zeros(n, dtype=np.int64)
    _verlet(pos, box, REPULSION_RANGE, vl, vc, np.empty((n, 3)))
    grad = np.empty((n, 3))
    par = _parameters(k_rep)
    args = (pos, box, nb, bonds, nbond, angles, nang, every, n, every, vl, vc, grad, par)
    return float(_energy_grad(*args))


def statistics(pos: np.ndarray, nb: np.ndarray, box: float, n_cells: int) -> dict:
    """Structure statistics of a periodic network (bond graph nb)."""
    n = len(pos)
    bond_vec = _min_image(pos[nb] - pos[:, None, :], box)  # (n, 4, 3)
    blen = np.linalg.norm(bond_vec, axis=2)
    iu, ju = np.triu_indices(4, 1)
    u = bond_vec / blen[..., None]
    ang = np.degrees(np.arccos(np.clip((u[:, iu] * u[:, ju]).sum(-1), -1, 1))).ravel()
    tetra = math.degrees(math.acos(-1.0 / 3.0))
    # distances: coordination, pair distribution, non-bonded contacts
    rmax = 0.5 * box
    pairs = cKDTree(pos, boxsize=box).query_pairs(rmax, output_type="ndarray")
    dist = np.linalg.norm(_min_image(pos[pairs[:, 1]] - pos[pairs[:, 0]], box), axis=1)
    coord = np.bincount(pairs[dist < COORD_CUTOFF].ravel(), minlength=n)
    bonded = set(map(tuple, np.sort(np.c_[np.repeat(np.arange(n), 4), nb.ravel()], 1)))
    nonb = np.array([tuple(p) not in bonded for p in np.sort(pairs, 1)])
    dr = 0.01
    edges = np.arange(0.0, rmax + 0.5 * dr, dr)
    r = 0.5 * (edges[1:] + edges[:-1])
    h = 2.0 * np.histogram(dist, edges)[0] / n
    rho = n / box**3
    # smoothed g(r) (Gaussian, 0.03 Å) for the peak positions
    k = np.exp(-0.5 * (np.arange(-15, 16) * dr / 0.03) ** 2)
    hs = np.convolve(h, k / k.sum(), mode="same")
    g = hs / (rho * 4.0 * np.pi * r**2 * dr)
    m1 = (r > 2.0) & (r < 2.8)
    m2 = (r > 3.2) & (r < 4.4)
    # Debye structure factor with a Lorch window up to half the box
    s = np.round(np.arange(0.15, 1.4001, 0.0025), 6)
    window = np.sinc(r / rmax)
    kern = np.sinc(2.0 * s[:, None] * r[None, :])
    sq = 1.0 + kern @ (h * window) - rho * (kern @ (4.0 * np.pi * r**2 * dr * window))
    low = (s > 0.2) & (s < 0.45)

    # Bragg components at the diamond's {111} and {220} reciprocal-lattice vectors
    def bragg(hkl: list[tuple[int, int, int]]) -> float:
        gv = np.array(hkl, dtype=float) * n_cells / box
        return float((np.abs(np.exp(2j * np.pi * pos @ gv.T).sum(0)) ** 2 / n).max())

    g111 = [(1, 1, 1), (1, 1, -1), (1, -1, 1), (-1, 1, 1)]
    g220 = [(2, 2, 0), (2, -2, 0), (2, 0, 2), (2, 0, -2), (0, 2, 2), (0, 2, -2)]
    return {
        "n_atoms": n,
        "box_A": box,
        "number_density_per_A3": rho,
        "mass_density_g_cm3": rho * M_SI / N_A_E24,
        "bond_length_mean_A": float(blen.mean()),
        "bond_length_rms_A": float(blen.std()),
        "bond_angle_mean_deg": float(ang.mean()),
        "bond_angle_rms_deviation_deg": float(np.sqrt(np.mean((ang - tetra) ** 2))),
        "bond_angle_std_deg": float(ang.std()),
        "coordination_cutoff_A": COORD_CUTOFF,
        "coordination_mean": float(coord.mean()),
        "fourfold_fraction": float(np.mean(coord == 4)),
        "shortest_nonbonded_A": float(dist[nonb].min()),
        "gr_first_peak_A": float(r[m1][np.argmax(g[m1])]),
        "gr_second_peak_A": float(r[m2][np.argmax(g[m2])]),
        "fsdp_s_per_A": float(s[low][np.argmax(sq[low])]),
        "fsdp_q_per_A": float(2 * np.pi * s[low][np.argmax(sq[low])]),
        "fsdp_S": float(sq[low].max()),
        "bragg_111_max_S": bragg(g111),
        "bragg_220_max_S": bragg(g220),
        "keating_energy_eV_per_atom": energy(pos, nb, box, 0.0) / n,
        "repulsion_energy_eV_per_atom": (energy(pos, nb, box) - energy(pos, nb, box, 0.0)) / n,
    }


def _short(st: dict) -> str:
    return (
        f"bond {st['bond_length_mean_A']:.4f}±{st['bond_length_rms_A']:.4f} Å, angle rms "
        f"{st['bond_angle_rms_deviation_deg']:.2f}°, 4-fold {st['fourfold_fraction']:.3f}, "
        f"nonbonded>{st['shortest_nonbonded_A']:.2f} Å, g peaks {st['gr_first_peak_A']:.3f}/"
        f"{st['gr_second_peak_A']:.3f}, FSDP s {st['fsdp_s_per_A']:.4f} (S {st['fsdp_S']:.2f})"
        f", S111 {st['bragg_111_max_S']:.1f}, E {st['keating_energy_eV_per_atom']:.4f} eV/at"
    )


def build(seed: int, phases, n_cells: int = N_CELLS, log=print) -> tuple:
    """The whole WWW run; returns positions, bond graph, box and the run's counters.

    phases: (name, tries per atom, kT at the start, kT at the end (eV)) in turn.
    """
    a = A_SI / (1.0 - DENSITY_DEFICIT) ** (1.0 / 3.0)
    pos, nb, box = diamond(n_cells, a)
    n = len(pos)
    par = _parameters()
    log(f"diamond start: {n} atoms, box {box:.4f} Å; {_short(statistics(pos, nb, box, n_cells))}")
    runs = []
    chunk = int(CHUNK_PER_ATOM * n)
    n_chunk = 0
    for name, per_atom, kt0, kt1 in phases:
        t0 = time.perf_counter()
        st = np.zeros(5, dtype=np.int64)
        total = int(per_atom * n)
        for start in range(0, total, chunk):
            stop = min(start + chunk, total)
            # kT of this chunk's first and last try on the phase's geometric schedule
            ka = kt0 * (kt1 / kt0) ** (start / max(total - 1, 1))
            kb = kt0 * (kt1 / kt0) ** ((stop - 1) / max(total - 1, 1))
            # one seed per chunk, derived from the run's seed (deterministic)
            _www(
                pos,
                nb,
                box,
                seed * 1_000_003 + n_chunk,
                stop - start,
                ka,
                kb,
                LOCAL_DEPTH,
                par,
                VERLET_SKIN,
                LOCAL_FMAX,
                FULL_MARGIN,
                st,
            )
            n_chunk += 1
            e = _full_relax(pos, nb, box, par, VERLET_SKIN, 1e-3, 20000)
            if (start // chunk) % 10 == 9 or stop == total:
                log(
                    f"  {name} {stop}/{total} kT {kb:.3f} eV, accepted {st[2]}, "
                    f"E {e / n:.4f} eV/atom, {time.perf_counter() - t0:.0f} s"
                )
        runs.append(
            {
                "phase": name,
                "tries": int(st[0]),
                "refused_topology": int(st[1]),
                "accepted": int(st[2]),
                "kT_eV": [kt0, kt1],
            }
        )
        log(f"{name}: {runs[-1]}, {time.perf_counter() - t0:.1f} s")
        log(f"  {_short(statistics(pos, nb, box, n_cells))}")
    _full_relax(pos, nb, box, par, VERLET_SKIN, FINAL_FMAX, 200000)
    return pos, nb, box, runs


def _phases(text: str) -> tuple:
    out = []
    for item in text.split(","):
        name, per_atom, kt0, kt1 = item.split(":")
        out.append((name, float(per_atom), float(kt0), float(kt1)))
    return tuple(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--dry-run", action="store_true", help="print only, write nothing")
    default = ",".join(":".join(map(str, p)) for p in PHASES)
    ap.add_argument(
        "--phases", default=default, help=f"name:tries per atom:kT0:kT1,... (eV; {default})"
    )
    ap.add_argument("--out", type=Path, default=OUT_JSON)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    phases = _phases(args.phases)
    pos, nb, box, runs = build(args.seed, phases)
    stats = statistics(pos, nb, box, N_CELLS)
    print("final:", json.dumps(stats, indent=1))
    print(f"total {time.perf_counter() - t0:.1f} s")
    if not args.dry_run:
        write(args.out, pos, nb, box, args.seed, runs, stats, phases)
    return 0


REFERENCES = [
    "F. Wooten, K. Winer and D. Weaire, Phys. Rev. Lett. 54 (1985) 1392 (WWW bond switches)",
    "G. T. Barkema and N. Mousseau, Phys. Rev. B 62 (2000) 4985 (local relaxation, "
    "Keating parameters)",
    "P. N. Keating, Phys. Rev. 145 (1966) 637 (the potential)",
    "E. Bitzek et al., Phys. Rev. Lett. 97 (2006) 170201 (FIRE relaxation)",
    "J. S. Custer et al., Appl. Phys. Lett. 64 (1994) 437 (a-Si 1.8 % less dense than c-Si)",
    "K. Laaziri et al., Phys. Rev. Lett. 82 (1999) 3460 and Phys. Rev. B 60 (1999) 13520 "
    "(measured a-Si pair distribution: first peak 2.35 Å, second 3.84 Å)",
]


def write(out: Path, pos, nb, box, seed, runs, stats, phases) -> None:
    """The model as JSON (positions, bonds, provenance, statistics) and a note beside it."""
    n = len(pos)
    bonds = np.sort(np.c_[np.repeat(np.arange(n), 4), nb.ravel()], axis=1)
    bonds = np.unique(bonds, axis=0)
    meta = {
        "name": "a-Si continuous random network",
        "note": (
            "computed by anodemap's tools/make_asi_crn.py, not a measured structure: a "
            "Wooten-Winer-Weaire continuous random network of Si relaxed with the Keating "
            "potential"
        ),
        "units": "positions in Å inside the periodic cube [0, box_A)^3; bonds are atom "
        "index pairs (each atom has four)",
        "seed": seed,
        "start": f"diamond Si, {N_CELLS}^3 conventional cells, a = {A_SI} Å scaled to a "
        f"density {100 * DENSITY_DEFICIT:.1f} % below c-Si",
        "potential": {
            "form": "E = 3a/(16d^2) sum_bonds (r.r - d^2)^2 + 3b/(8d^2) sum_angles "
            "(r_ij.r_ik + d^2/3)^2",
            "alpha_eV_per_A2": KEATING_ALPHA,
            "beta_over_alpha": KEATING_BETA_OVER_ALPHA,
            "d_A": KEATING_D,
            "nonbonded_repulsion": "E = k (r_rep - r)^2 for non-bonded pairs closer than "
            f"r_rep; k = {REPULSION_K} eV/A^2, r_rep = {REPULSION_RANGE} A (model choice)",
        },
        "schedule": {
            "local_relaxation_depth_bonds": LOCAL_DEPTH,
            "local_fmax_eV_per_A": LOCAL_FMAX,
            "full_relaxation_every_tries_per_atom": CHUNK_PER_ATOM,
            "final_fmax_eV_per_A": FINAL_FMAX,
            "phases_name_tries_per_atom_kT0_kT1_eV": [list(p) for p in phases],
            "runs": runs,
        },
        "references": REFERENCES,
        "statistics": {k: round(v, 6) if isinstance(v, float) else v for k, v in stats.items()},
        "box_A": box,
    }
    head = json.dumps(meta, indent=1, ensure_ascii=False)[:-2]
    rows = ",\n".join("[" + ",".join(f"{x:.4f}" for x in p) + "]" for p in pos)
    brows = ",\n".join(f"[{i},{j}]" for i, j in bonds)
    out.write_text(f'{head},\n "positions_A": [\n{rows}\n],\n "bonds": [\n{brows}\n]\n}}\n')
    st = meta["statistics"]
    note = out.with_suffix(".md")
    note.write_text(
        f"# {out.name}: the simulator's amorphous silicon\n\n"
        f"{meta['note']}.\n\n"
        f"Made by `python tools/make_asi_crn.py --seed {seed}` (the method, potential, "
        "schedule and every number are in the JSON's metadata and in docs/synth.md).\n\n"
        f"* {n} atoms in a periodic cube of {box:.4f} Å, "
        f"{st['mass_density_g_cm3']:.3f} g/cm³\n"
        f"* bonds {st['bond_length_mean_A']:.4f} ± {st['bond_length_rms_A']:.4f} Å, "
        f"bond angles {st['bond_angle_mean_deg']:.2f}° with an rms deviation of "
        f"{st['bond_angle_rms_deviation_deg']:.2f}° from 109.47°\n"
        f"* {100 * st['fourfold_fraction']:.1f} % of the atoms have four neighbours within "
        f"{COORD_CUTOFF} Å; g(r) peaks at {st['gr_first_peak_A']:.2f} and "
        f"{st['gr_second_peak_A']:.2f} Å\n"
        f"* first sharp diffraction peak of S(s) at s = {st['fsdp_s_per_A']:.4f} 1/Å "
        f"(q = {st['fsdp_q_per_A']:.3f} 1/Å); largest diamond {{111}} component "
        f"S = {st['bragg_111_max_S']:.2f} (diamond: {n / 2:.0f})\n\n"
        "References: " + "; ".join(REFERENCES) + ".\n",
        encoding="utf-8",
    )
    print(f"wrote {out} ({out.stat().st_size} bytes) and {note}")


if __name__ == "__main__":
    sys.exit(main())
