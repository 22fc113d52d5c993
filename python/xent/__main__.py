"""``python -m xent eval ...``: the same command line as the ``xent`` script."""
import sys

from .cli import main

sys.exit(main())
