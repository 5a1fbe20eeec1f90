"""The algorithms, one module each, all behind :class:`~xcorr.algo.registry.Algorithm`.

Importing this package registers every built-in algorithm.
"""

from xcorr.algo import direct, fft, reference, separable, vendor
from xcorr.algo.registry import Algorithm, algorithm_names, get_algorithm, register

__all__ = [
    "Algorithm",
    "algorithm_names",
    "direct",
    "fft",
    "get_algorithm",
    "reference",
    "register",
    "separable",
    "vendor",
]
