"""The MATE model pieces (mate.align): prior, guided attention, prototypes, losses, motion encoder/decoder."""
