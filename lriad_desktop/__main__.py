"""`python -m lriad_desktop` is the same as the `lriad` command."""

import sys

from lriad_desktop.launcher import main

if __name__ == "__main__":
    sys.exit(main())
