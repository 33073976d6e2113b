import sys

from tsallis.cli import main

sys.exit(main())
