"""Downstream text-to-motion generators behind one interface (`base.Generator`): MDM-style diffusion first, a
MoMask-style masked-token generator later. They read text through `text.TextFeatures` and never evaluate
themselves: the pipeline measures them through `fit`'s `on_epoch` hook."""
