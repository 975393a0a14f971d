"""Correlation of the modalities of one region: every map registered on the HAADF
survey, resampled into one frame and tabulated per feature class and connected region
(``anodemap correlate``; docs/registration.md)."""
