"""The text side: language models with trainable word-embedding rows, the aligned-rows artifact, segmentation."""
