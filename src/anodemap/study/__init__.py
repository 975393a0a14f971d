"""Studies: the states of an electrode and their datasets, run as one (``anodemap run``).

Examples
--------
>>> from anodemap.study import read_study, run_study
>>> callable(read_study) and callable(run_study)
True
"""

from anodemap.study.file import Dataset, State, Study, read_study
from anodemap.study.run import RUN_SCHEMA, run_study

__all__ = ["RUN_SCHEMA", "Dataset", "State", "Study", "read_study", "run_study"]
