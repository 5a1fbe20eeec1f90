"""The library's own exception."""


class UnsupportedError(ValueError):
    """An algorithm was forced (``algo=...``) on a case it cannot compute; the message says why.

    ``algo="auto"`` never raises it: the planner only picks algorithms that support the case.
    """


class ChannelsLastWarning(UserWarning):
    """``filter2d`` got an (H, W, 3) or (H, W, 4) image without ``channel_axis``: it filters the last two axes
    (the (W, C) planes), which for a colour photo is meaningless. Pass ``channel_axis=-1`` to filter each
    channel; silence it with ``warnings.filterwarnings("ignore", category=xcorr.ChannelsLastWarning)`` where
    (W, C) planes are meant."""
