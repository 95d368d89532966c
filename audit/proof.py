"""``python -m audit.proof``: the documented command, kept where it was documented; the
checker is ``audit.integrity.proof``."""

import sys

from audit.integrity.proof import main

if __name__ == "__main__":
    sys.exit(main())
