"""The ``xcorr`` command line: ``filter``, ``fit``, ``plan``, ``demo`` and ``bench`` (see ``xcorr --help``).

One module per job: :mod:`~xcorr.cli.app` (the commands and exit codes), one ``*_command`` module per
subcommand, :mod:`~xcorr.cli.images` (file codecs), :mod:`~xcorr.cli.depth` (bit-depth conversion),
:mod:`~xcorr.cli.kernel_spec` (``-k``), :mod:`~xcorr.cli.safe_write` (atomic, non-clobbering outputs),
:mod:`~xcorr.cli.grid` (alpha alignment), :mod:`~xcorr.cli.plots` (matplotlib, optional).
"""
