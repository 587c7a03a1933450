"""Regenerate the shell completions and the man page from the app (tools/docgen.py does the work).

    python scripts/gen_docs.py           rewrite completions/ and man/
    python scripts/gen_docs.py --check   write nothing; exit 1 naming every stale file

Run it after changing any command, option or help text; tests/cli/test_docgen.py fails until you do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Runnable from a checkout without installing: the package is imported from the tree it documents.
sys.path.insert(0, str(ROOT))

from tools.docgen import generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that differ; exit 1 if any")
    args = parser.parse_args(argv)
    stale = []
    for path, content in generate(ROOT).items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            # newline="" keeps "\n" on every platform: the files are compared byte for byte.
            path.write_text(content, encoding="utf-8", newline="")
    if args.check:
        if stale:
            print("out of date (run: python scripts/gen_docs.py):", *stale, sep="\n  ", file=sys.stderr)
            return 1
        return 0
    for relative in stale:
        print(f"wrote {relative}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
