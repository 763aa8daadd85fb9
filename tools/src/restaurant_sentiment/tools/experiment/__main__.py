"""Entry point of `python -m experiment`."""

import sys

from restaurant_sentiment.tools.experiment.cli import main

sys.exit(main())
