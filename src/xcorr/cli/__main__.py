"""``python -m xcorr.cli``: the ``xcorr`` command."""

import sys

from xcorr.cli.app import main

sys.exit(main())
