"""The MATE method: motion encoder and decoder, localization prior, guided attention, prototypes, losses, trainer."""
