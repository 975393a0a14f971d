"""The trainable mode: a random forest learns the classes from a few scribbles.

The per-pixel features of :func:`anodemap.features.texture.pixel_features` of the
thickness-normalised image, at the marked pixels, train scikit-learn's
``RandomForestClassifier`` through scikit-image's
:func:`skimage.future.fit_segmenter`; its class probabilities at every pixel are the
probability map (classes not marked have probability 0). Needs scikit-learn.

Examples
--------
>>> import numpy as np
>>> img = np.ones((32, 32)); img[:, 16:] = 2.0
>>> marks = np.zeros((32, 32), int); marks[5:8, 2:6] = 3; marks[5:8, 26:30] = 2
>>> prob, info = train_and_predict(img, marks, scales=(1.0,), n_trees=20, seed=0)
>>> int(prob.argmax(axis=0)[20, 3]), int(prob.argmax(axis=0)[20, 28])
(2, 1)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anodemap.errors import AnodemapInputError
from anodemap.features.classes import CLASS_NAMES, CLASSES
from anodemap.features.texture import pixel_features

__all__ = ["train_and_predict"]


def _forest(n_trees: int, seed: int) -> Any:
    try:
        from sklearn.ensemble import RandomForestClassifier
    except ImportError as err:
        raise AnodemapInputError(
            "--training needs the Python package scikit-learn, which is not installed; "
            "install it (pip install scikit-learn, or anodemap[training]) and run the "
            "command again, or leave out --training for the unsupervised classes"
        ) from err
    # one job: the same forest, bit for bit, on every machine
    return RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=1)


def train_and_predict(
    image: np.ndarray,
    scribbles: np.ndarray,
    *,
    scales: tuple[float, ...],
    n_trees: int,
    seed: int,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Class probabilities of every pixel from a forest trained on ``scribbles``.

    Parameters
    ----------
    image : ndarray (ny, nx)
        Thickness-normalised image.
    scribbles : ndarray of int (ny, nx)
        0 unmarked, class code + 1 elsewhere (:mod:`anodemap.features.scribbles`).
    scales : tuple of float
        Feature scales (Gaussian σ, px).
    n_trees : int
        Trees of the forest.
    seed : int
        The forest's random state.

    Returns
    -------
    probability : ndarray (5, ny, nx)
    info : dict
        Marked pixels per class, the feature names, their importances.
    """
    from skimage.future import fit_segmenter

    features = pixel_features(image, scales)
    names = list(features)
    stack = np.stack([features[n] for n in names], axis=-1).astype(np.float32)
    clf = fit_segmenter(np.asarray(scribbles), stack, _forest(n_trees, seed))
    flat = clf.predict_proba(stack.reshape(-1, stack.shape[-1]))
    prob = np.zeros((len(CLASSES), *image.shape))
    for k, value in enumerate(clf.classes_):
        prob[int(value) - 1] = flat[:, k].reshape(image.shape)
    counts = np.bincount(np.asarray(scribbles).ravel(), minlength=len(CLASSES) + 1)
    importance = dict(zip(names, (float(v) for v in clf.feature_importances_), strict=True))
    info = {
        "classifier": f"sklearn RandomForestClassifier({n_trees} trees, random_state={seed})",
        "marked_pixels": {CLASS_NAMES[c]: int(counts[c + 1]) for c in CLASSES},
        "features": names,
        "feature_importance": dict(sorted(importance.items(), key=lambda kv: kv[1], reverse=True)),
    }
    return prob, info
