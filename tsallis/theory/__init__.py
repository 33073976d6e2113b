"""`tsallis.theory`: each result of the paper as a computer-algebra check (SymPy)."""
