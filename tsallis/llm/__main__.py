"""`python -m tsallis.llm train ...` (and `accelerate launch -m tsallis.llm train ...`) = `tsallis llm train ...`,
with the same errors and exit codes: this entry script, not the library, knows the top-level command."""

import sys

from tsallis.cli import main

sys.exit(main(["llm", *sys.argv[1:]]))
