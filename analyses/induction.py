"""Replaced by the study `analyses/dynamics/induction_formation.py` (`python -m analyses run
dynamics.induction_formation`). `python -m analyses.induction [--quick] [--seeds N] [--out DIR] [--set FIELD=VALUE]`
runs that study with the same arguments."""

from analyses.dynamics.induction_formation import STUDY
from probe.study import main

if __name__ == "__main__":
    main(STUDY)
