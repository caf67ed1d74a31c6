"""`python -m analyses.claims [--quick] [--seeds N] [--out DIR]`: run the whole claims lab and write
runs/claims/report.md and metrics.json (the same as `python -m analyses run claims`; see analyses/claims/_index.py)."""

import sys

from analyses.__main__ import main

if __name__ == "__main__":
    main(["run", "claims", *sys.argv[1:]])
