"""Repeated calls decided once: what a call runs, remembered by everything that decided it.

A layer in a training loop calls xcorr with the same shapes, dtypes, settings and planner state every time, and
for a tiny layer the deciding (argument checks, the :class:`~xcorr.problem.Problem`, the plan lookup) costs more
than the kernel. A :class:`Routes` table maps a call's key to the function that runs the call's tensors
directly, so a repeat costs one key and one dictionary lookup. A key holds every input of the decision: the
tensors' shapes, dtypes and devices, the weight's rank where it can change the plan, the call's settings and
:func:`xcorr.planner.route_state` (``use(...)``, the registry, the thread count). Like ``cudnn.benchmark``, a
route stays what the call's first plan made it (measured or estimated) for the life of the process.

Example:
    >>> import torch
    >>> table: Routes[str] = Routes()
    >>> key = tensor_key(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3))
    >>> table.knows(key), table.remember(key, "vendor"), table.get(key)
    (False, None, 'vendor')
"""

from __future__ import annotations

from typing import Generic, TypeVar

from torch import Tensor

from xcorr.lowrank import known_rank
from xcorr.planner import route_state
from xcorr.problem import is_channels_last

MAX_ROUTES = 4096
"""Keys a table holds before it starts afresh (a shape sweep must not grow it without bound)."""

R = TypeVar("R")


class Routes(Generic[R]):
    """Call keys -> what runs them (``None``: the full path does, and it is known that it must)."""

    def __init__(self) -> None:
        self._known: dict[tuple[object, ...], R | None] = {}

    def get(self, key: tuple[object, ...] | None) -> R | None:
        """The remembered route for ``key``; ``None`` if there is none (or ``key`` is ``None``)."""
        return None if key is None else self._known.get(key)

    def knows(self, key: tuple[object, ...]) -> bool:
        """Whether a route (or its absence) was remembered for ``key``."""
        return key in self._known

    def remember(self, key: tuple[object, ...], route: R | None) -> None:
        """Keep ``route`` for ``key`` until the table is full."""
        if len(self._known) >= MAX_ROUTES:
            self._known.clear()
        self._known[key] = route


def tensor_key(x: Tensor, w: Tensor) -> tuple[object, ...]:
    """What a plan reads of ``x`` (N, C, H, W) and ``w`` (O, C // groups, kh, kw), and the planner's state.

    Shapes, dtypes, the device and ``x``'s layout (a weight elsewhere fails in the kernel, as in torch), the
    weight's numerical rank where it can change the plan (remembered per weight,
    :func:`xcorr.lowrank.known_rank`), and :func:`xcorr.planner.route_state`. Callers add their settings.
    """
    layout = is_channels_last(x)
    return (x.shape, x.dtype, x.device, layout, w.shape, w.dtype, known_rank(w), *route_state())
