"""`python -m tsallis.llm train ...` (and `accelerate launch -m tsallis.llm train ...`)."""

import sys

from tsallis.llm.cli import main

sys.exit(main())
