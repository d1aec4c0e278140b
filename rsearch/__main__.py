import sys

from rsearch.cli import main

sys.exit(main())
