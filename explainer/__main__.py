"""``python -m explainer``: the command line (see :mod:`explainer.cli`)."""

import sys

from explainer.cli import main

sys.exit(main())
