"""``python -m audit.archive``: the documented command, kept where it was documented; the
checker is ``audit.integrity.archive``."""

import sys

from audit.integrity.archive import main

if __name__ == "__main__":
    sys.exit(main())
