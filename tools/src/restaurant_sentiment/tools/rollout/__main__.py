"""Entry point of `python -m restaurant_sentiment.tools.rollout` (`make rollout`)."""

import sys

from restaurant_sentiment.tools.rollout.cli import main

sys.exit(main())
