"""Training-dynamics studies: induction-head formation, grokking."""
