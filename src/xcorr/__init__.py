"""xcorr: exact and fast 2-D cross-correlation and convolution for NumPy and PyTorch.

Public API:

- :func:`corr2d`, :func:`filter2d`, :func:`conv2d`: correlate (NumPy or torch, differentiable);
- :func:`plan`, :func:`use`, :func:`tune`, :func:`algorithms`: see and steer which algorithm runs;
- :mod:`xcorr.nn` (``Conv2D``, ``Conv2d``, ``LazyConv2d``) and :func:`convert`: layers;
- :func:`fit_kernel`: find the kernel that maps inputs to outputs;
- :func:`match_template`, :func:`peaks`: find templates in images (OpenCV's six scores, masks, many at once);
- :mod:`xcorr.kernels`: named kernels.
"""

import sys

from xcorr import kernel_cache, kernels, nn
from xcorr._version import __version__
from xcorr.algo import algorithm_names as algorithms
from xcorr.errors import ChannelsLastWarning, UnsupportedError
from xcorr.fit import FitResult, fit_kernel
from xcorr.functional import conv2d, corr2d, filter2d
from xcorr.matching import match_template
from xcorr.nn import convert
from xcorr.peaks import peaks
from xcorr.planner import Choice, Plan, plan, tune, use

__all__ = [
    "ChannelsLastWarning",
    "Choice",
    "FitResult",
    "Plan",
    "UnsupportedError",
    "__version__",
    "algorithms",
    "conv2d",
    "convert",
    "corr2d",
    "filter2d",
    "fit_kernel",
    "kernels",
    "match_template",
    "nn",
    "peaks",
    "plan",
    "tune",
    "use",
]

# Every module is imported now: bring numba's disk cache in step with the kernels' sources (xcorr.kernel_cache).
kernel_cache.keep_in_step([module for name, module in list(sys.modules.items()) if name.startswith("xcorr.")])
