"""Figures of anodemap pdf: the stacked G(r) keeps small curves readable."""

import numpy as np

from anodemap.pdf.figures import _common_height, pdf_png


def test_a_small_g_of_r_beside_a_large_one_is_scaled_and_named(tmp_path):
    r = np.linspace(1.0, 10.0, 200)
    g = np.sin(3 * r) * np.exp(-r / 3)
    big, small = (
        (200 * g, 200 * g - 20, 200 * g + 20, [2.3]),
        (0.5 * g, 0.5 * g - 0.05, 0.5 * g + 0.05, [2.4]),
    )
    curves = [
        ("Si", r, *big),
        ("grey", r, *small),
        ("also big", r, *(1.5 * x for x in big[:3]), []),
    ]
    shown, scaled = _common_height(curves)
    assert scaled and [c[0] for c in shown] == ["Si", "grey × 500", "also big"]
    np.testing.assert_allclose(shown[1][2], 500 * small[0])  # the round factor under 660
    np.testing.assert_array_equal(shown[0][2], big[0])  # the large ones stay as they are
    assert not _common_height(curves[:1])[1]
    assert pdf_png(curves, tmp_path / "pdf.png").stat().st_size > 0
