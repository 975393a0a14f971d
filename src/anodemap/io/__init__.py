"""Files in and out, through rosettasciio, keeping calibrated axes and metadata."""

from anodemap.io.dataset import Axis, Dataset
from anodemap.io.files import load, load_all, save, supported_extensions

__all__ = ["Axis", "Dataset", "load", "load_all", "save", "supported_extensions"]
