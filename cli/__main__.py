"""``python -m deferral.cli``."""

import sys

from deferral.cli.main import main

sys.exit(main())
