"""Entry point of `python -m experiment`."""

import sys

from experiment.cli import main

sys.exit(main())
