"""Name -> algorithm registry. Every algorithm answers the same :class:`~xcorr.problem.Problem` with one signature.

An algorithm is registered once, at import, with :func:`register`; the planner, ``algo=`` and the test-suite
all read this registry, so a newly registered algorithm is planned, selectable and tested without more code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from xcorr.problem import Problem, is_channels_last


@dataclass(frozen=True)
class Algorithm:
    """One way to compute a :class:`Problem`.

    Attributes:
        name: what ``algo=`` accepts.
        run: ``run(x, w, problem) -> y`` with ``x`` (N, C, H, W) unpadded, ``w`` (O, C // groups, kh, kw),
            ``y`` (N, O, Ho, Wo) of ``x``'s dtype and device. Called without autograd; the zero padding in
            ``problem.padding`` is the algorithm's to apply.
        unsupported: ``None`` when the algorithm can compute the problem, else the reason it cannot.
        cost: estimated seconds for the problem on this machine (constants in :mod:`xcorr.costs`).
        exact: ``True`` when its rounding error is relative to each output (like a direct sum); ``False``
            when it is absolute, about ``eps * max|x| * sum|w|`` (FFT, low-rank factorisations).
        summary: one line for ``xcorr.algorithms()`` listings and docs.
        input_gradient: optional ``input_gradient(dy, w, problem) -> dx`` (N, C, H, W), a native backward-data
            kernel for the forward ``problem``, used instead of ``run`` on the rewritten product when the
            planner gives this algorithm the input gradient.
        weight_gradient: optional ``weight_gradient(x, dy, problem) -> dw`` (O, C // groups, kh, kw), likewise.
        channels_last: ``run`` reads a channels-last ``x`` as it is laid out (the engine hands the others a
            contiguous copy and converts their result back).
        run_extended: optional ``run_extended(x, w, problem, boundary, samples=1, result_dtype=None) -> y``, ``run``
            with ``problem.padding`` extending ``x`` by ``boundary`` (a ``numpy.pad`` mode) inside the kernels,
            ``x`` possibly 8- or 16-bit samples read as they are (``problem.input_dtype``), rows of ``samples``
            interleaved channels, and the result rounded into an integer ``result_dtype`` where one is given
            (see :func:`xcorr.algo.direct.run_extended`). The others get a padded float copy.
    """

    name: str
    run: Callable[[Tensor, Tensor, Problem], Tensor]
    unsupported: Callable[[Problem], str | None]
    cost: Callable[[Problem], float]
    exact: bool
    summary: str
    input_gradient: Callable[[Tensor, Tensor, Problem], Tensor] | None = None
    weight_gradient: Callable[[Tensor, Tensor, Problem], Tensor] | None = None
    channels_last: bool = False
    run_extended: Callable[..., Tensor] | None = None

    def run_in_layout(self, x: Tensor, w: Tensor, problem: Problem) -> Tensor:
        """:attr:`run`, with a channels-last ``x`` handed over as it is where the algorithm reads that layout, else
        as a contiguous copy; the result is channels last when ``x`` is (as torch's ``conv2d``)."""
        channels_last = is_channels_last(x)
        if not self.channels_last:
            x, w = x.contiguous(), w.contiguous()
        y = self.run(x, w, problem)
        return y.contiguous(memory_format=torch.channels_last) if channels_last else y


_REGISTRY: dict[str, Algorithm] = {}
_VERSION = [0]  # bumped by every registration change, so plans memoised on it are not reused across one


def register(algorithm: Algorithm) -> Algorithm:
    """Add ``algorithm`` under its name; a second registration under the same name is an error."""
    if algorithm.name in _REGISTRY or algorithm.name == "auto":
        raise ValueError(f"an algorithm named {algorithm.name!r} is already registered")
    _REGISTRY[algorithm.name] = algorithm
    _VERSION[0] += 1
    return algorithm


def unregister(name: str) -> None:
    """Remove the algorithm registered as ``name`` (a plug-in's teardown, or a test's); unknown names are an error."""
    get_algorithm(name)
    del _REGISTRY[name]
    _VERSION[0] += 1


def version() -> int:
    """A number that changes whenever an algorithm is registered or removed (planners memoise on it)."""
    return _VERSION[0]


def get_algorithm(name: str) -> Algorithm:
    """The algorithm called ``name``; a ``ValueError`` listing the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        valid = ", ".join(repr(n) for n in ("auto", *sorted(_REGISTRY)))
        raise ValueError(f"unknown algorithm {name!r}; algo= takes one of {valid}") from None


def algorithm_names() -> tuple[str, ...]:
    """The names ``algo=`` accepts besides ``"auto"``, sorted (public as ``xcorr.algorithms()``).

    Example:
        >>> import xcorr
        >>> xcorr.algorithms()
        ('direct', 'fft', 'reference', 'separable', 'vendor')
    """
    return tuple(sorted(_REGISTRY))
