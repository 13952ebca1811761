import sys

from hepdl.cli import main

sys.exit(main())
