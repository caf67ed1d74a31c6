"""The claims lab: the seeds' textbook claims about Transformers, one study each (`python -m analyses.claims`)."""
