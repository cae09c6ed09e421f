"""PyInstaller's entry script for the frozen app (`lriad.spec`): the same entry point as `lriad`."""

import sys

from lriad_desktop.launcher import main

if __name__ == "__main__":
    sys.exit(main())
