"""`tsallis theory`: placeholder until the checks land."""


def register(sub) -> None:
    p = sub.add_parser("theory", help="run the computer-algebra checks of the paper's results")
    p.set_defaults(func=lambda args: print("no checks yet") or 0)
