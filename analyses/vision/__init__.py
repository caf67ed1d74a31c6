"""Vision studies on scikit-learn's 8x8 digits (seed 000 §2-3; Dosovitskiy et al. 2021): CNN vs ViT against the
amount of data, position embeddings in a ViT, and what a trained ViT attends to (attention, rollout, logit lens)."""
