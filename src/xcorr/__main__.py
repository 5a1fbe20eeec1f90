"""``python -m xcorr``: the ``xcorr`` command."""

import sys

from xcorr.cli.app import main

sys.exit(main())
