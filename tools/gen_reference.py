"""Regenerate the references: README scopes table, docs/settings.md, .env.example.

    python tools/gen_reference.py          # write what is out of date
    python tools/gen_reference.py --check  # exit 1 and print a diff if anything is

Both read the route table and the settings models (``xynergy.reference``); the
tests call the same functions, so a route, scope or setting added without running
this fails the suite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xynergy.reference import generate, write

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) every generated reference; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 with a diff when stale"
    )
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    files = generate(args.root)
    stale = [file for file in files if file.is_stale]
    if args.check:
        for file in stale:
            sys.stdout.write(file.diff())
        if stale:
            names = ", ".join(str(file.path) for file in stale)
            sys.stderr.write(f"out of date: {names}; run `make reference`\n")
            return 1
        sys.stdout.write(f"gen_reference: {len(files)} file(s) up to date\n")
        return 0
    for path in write(args.root, files):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
