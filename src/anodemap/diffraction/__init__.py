"""Scanning (precession) electron diffraction: stream to 4D, virtual images, phase maps.

Conventions: diffraction patterns are the last two axes (ky, kx) of a dataset; the
scattering vector is s = 1/d in 1/Å (q = 2πs where a formula needs it).
"""
