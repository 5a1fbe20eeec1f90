"""The library's own exception."""


class UnsupportedError(ValueError):
    """An algorithm was forced (``algo=...``) on a case it cannot compute; the message says why.

    ``algo="auto"`` never raises it: the planner only picks algorithms that support the case.
    """
