"""tlcourse: helpers for an offline, interactive course on transfer learning.

Importing this package imports neither PyTorch nor TensorFlow; framework code lives in
modules named ``*_torch`` / ``*_tf`` that a notebook imports explicitly.

>>> import tlcourse
>>> info = tlcourse.setup(seed=0)        # seeds Python, NumPy (+ any framework in use)
>>> info.seed
0
"""

from tlcourse.runtime import RunInfo, setup

__version__ = "0.1.0"
__all__ = ["RunInfo", "setup", "__version__"]
