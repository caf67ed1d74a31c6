"""Reproductions of papers: Scan and Snap and JoMA (Tian et al. 2023), linear attention as fast weight programmers
and its capacity (Schlag, Irie, Schmidhuber 2021), and multi-query associative recall (Arora et al. 2023, Zoology)."""
