"""Sparse autoencoders on any hook point of any probe model (`probe.sae`).

    site = Site(model, "blocks.0.hook_resid_post")                    # where the SAE reads (or head=h, fast weights)
    sae = SparseAutoencoder(SAEConfig(d_in=..., d_sae=..., architecture="topk", k=8, hook=site.hook))
    Trainer(sae, ActivationStream(site, data), config=TrainConfig(...)).fit()   # activations streamed, not stored
    evaluate(sae, site, eval_data)      # l0, explained variance, dead latents, CE loss recovered (SAELens' measures)
    top_activations(sae, site, eval_data)                              # top-activating examples per latent
    save_sae(sae, dir, model_dir, eval_data)      # with its model's path and inputs: the dashboard's SAE page reads it

Standard (L1) SAEs after Bricken et al. 2023 and TopK SAEs after Gao et al. 2024 (`probe/sae/sae.py`). SAELens
cannot be installed beside TransformerLens 4, hence this small module.
"""

from probe.sae.activations import ActivationStream
from probe.sae.examples import latent_summary, token_context, top_activations, vit_patch
from probe.sae.metrics import evaluate, explained_variance, l0, loss_recovered
from probe.sae.sae import SAEConfig, SparseAutoencoder
from probe.sae.site import Site
from probe.sae.store import load_sae, save_sae

__all__ = ["ActivationStream", "SAEConfig", "Site", "SparseAutoencoder", "evaluate", "explained_variance", "l0",
           "latent_summary", "load_sae", "loss_recovered", "save_sae", "token_context", "top_activations", "vit_patch"]
