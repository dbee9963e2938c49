"""``python -m ossdesk`` is the same as the ``ossdesk`` command."""

import sys

from ossdesk.cli import main

sys.exit(main())
