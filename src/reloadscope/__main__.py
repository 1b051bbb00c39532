import sys

from reloadscope.cli import main

sys.exit(main())
