"""The algorithms, one module each, all behind :class:`~xcorr.algorithms.registry.Algorithm`.

Importing this package registers every built-in algorithm.
"""

from xcorr.algorithms import direct, fft, reference, separable, vendor
from xcorr.algorithms.registry import Algorithm, algorithm_names, get_algorithm, register

__all__ = [
    "Algorithm",
    "algorithm_names",
    "direct",
    "fft",
    "get_algorithm",
    "register",
    "reference",
    "separable",
    "vendor",
]
