"""Moved: the pruning studies are `python -m studies.prune` (studies/prune.py), same arguments."""

import sys

if __name__ == "__main__":
    print("error: python -m evaluators.prune_study is now python -m studies.prune (same arguments)",
          file=sys.stderr)
    sys.exit(2)
