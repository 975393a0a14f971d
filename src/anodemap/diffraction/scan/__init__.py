"""The scan search: how the frames of a TVIPS recording fill a rectangular scan.

A recording holds more than the scan: frames before and after it (beam blanked or
parked), positions recorded twice, positions the camera missed, and, for serpentine
scans, reversed lines that lag by a few frames. The search finds the scan, every finding
overridable, and returns a :class:`~anodemap.diffraction.scan.plan.ScanPlan`.

What is found and how (:func:`~anodemap.diffraction.scan.search.reconstruct_scan`):

* frame headers: scan start and end, duplicated positions (the same ``rotidx`` again;
  the first frame is kept) and dropped positions (``rotidx`` values skipped);
* image content, from tiny per-frame virtual detectors (a bright-field disc and eight
  annular dark-field sectors around the direct beam, computed in one pass over the
  frames in bounded chunks): the scan start and end where headers say nothing (frames
  that differ from their neighbours by no more than noise, or that are dark, are
  idle), the line length (local peak of the correlation of frames one line apart), and
  serpentine scanning and its hysteresis (best correlation of each line with the
  mirrored, shifted next line);
* frame timestamps: dropped frames where headers carry no ``rotidx`` (gaps of two or more
  frame intervals).

Serpentine convention (that of rosettasciio's ``hysteresis``): line 0 is kept as
recorded; on odd lines the frame recorded ``j``-th shows position
``x = (nx - 1 - j + h) % nx``, so the ``h`` frames that wrap around are placed at the
other end of the line.

Modules:

* :mod:`~anodemap.diffraction.scan.features`: the one pass over the frames, a few
  numbers per frame;
* :mod:`~anodemap.diffraction.scan.span`: scan start and end from the content;
* :mod:`~anodemap.diffraction.scan.geometry`: acquisition order, line length, serpentine
  scanning and hysteresis from the content;
* :mod:`~anodemap.diffraction.scan.search`: the plan from the features
  (:func:`~anodemap.diffraction.scan.search.reconstruct_scan`);
* :mod:`~anodemap.diffraction.scan.plan`: the plan and its report;
* :mod:`~anodemap.diffraction.scan.dataset`: the plan's 4D dataset, read lazily.

:func:`anodemap.diffraction.stream.stream_to_file` converts a recording with them.

Examples
--------
>>> import tempfile, pathlib
>>> from anodemap.synth.tvips import write_tvips_recording
>>> from anodemap.diffraction.scan.search import reconstruct_scan
>>> sim = write_tvips_recording(pathlib.Path(tempfile.mkdtemp()) / "scan", seed=0)
>>> plan = reconstruct_scan(sim.paths[0])
>>> plan.scan_shape, plan.serpentine, plan.hysteresis
((16, 20), True, 2)
"""
