"""Tiny randomly initialised language models of each family, with tokenizers built offline (no hub, no download).

Each folder is a real Hugging Face model folder (config, safetensors weights, tokenizer) that `transformers` loads
with `from_pretrained`, so the encoder code under test runs exactly as it would on CLIP, DistilBERT or T5.
"""

from __future__ import annotations

from pathlib import Path

import torch

WORDS = (
    "a the person man woman someone walks walk walking runs run jumps jump turns turn kicks kick waves wave "
    "squats squat forward forwards backward backwards clockwise counterclockwise anticlockwise anti quickly fast "
    "slowly left right hand leg then after before that and with his her their in circle steps side"
).split()
LETTERS = "abcdefghijklmnopqrstuvwxyz"
PUNCT = list(".,-'")


def _bytes_to_unicode() -> list[str]:
    """GPT-2/CLIP byte-level alphabet (printable stand-ins for the 256 bytes)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars, extra = keep[:], 0
    for b in range(256):
        if b not in keep:
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def _wordpiece_vocab() -> dict[str, int]:
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *PUNCT, *LETTERS, *("##" + c for c in LETTERS), *WORDS]
    return {t: i for i, t in enumerate(dict.fromkeys(toks))}


def _clip_vocab_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    alphabet = _bytes_to_unicode()
    vocab = alphabet + [c + "</w>" for c in alphabet]
    merges: list[tuple[str, str]] = []
    for word in WORDS:
        cur = word[0]
        for i, ch in enumerate(word[1:], 1):
            nxt = ch + "</w>" if i == len(word) - 1 else ch
            merges.append((cur, nxt))
            cur += nxt
            vocab.append(cur)
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(dict.fromkeys(vocab))}, list(dict.fromkeys(merges))


def _unigram_vocab() -> list[tuple[str, float]]:
    pieces = ["<pad>", "</s>", "<unk>", "▁", *PUNCT, *LETTERS, *("▁" + w for w in WORDS), *WORDS]
    return [(p, 0.0 if i < 3 else -float(i) / 10) for i, p in enumerate(dict.fromkeys(pieces))]


def build_tiny(family: str, folder: Path, seed: int = 0) -> Path:
    import transformers as tf

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    small = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, hidden_size=32)
    if family == "bert":
        tok = tf.BertTokenizer(vocab=_wordpiece_vocab())
        model = tf.BertModel(tf.BertConfig(vocab_size=len(tok), max_position_embeddings=64, **small))
    elif family == "distilbert":
        tok = tf.DistilBertTokenizer(vocab=_wordpiece_vocab())
        cfg = tf.DistilBertConfig(vocab_size=len(tok), dim=32, n_layers=2, n_heads=2, hidden_dim=64,
                                  max_position_embeddings=64)
        model = tf.DistilBertModel(cfg)
    elif family == "clip":
        vocab, merges = _clip_vocab_merges()
        tok = tf.CLIPTokenizer(vocab=vocab, merges=merges)
        cfg = tf.CLIPTextConfig(vocab_size=len(tok), max_position_embeddings=77, projection_dim=16,
                                bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                                pad_token_id=tok.pad_token_id, **small)
        model = tf.CLIPTextModelWithProjection(cfg)
    elif family == "t5":
        tok = tf.T5Tokenizer(vocab=_unigram_vocab(), extra_ids=0)
        cfg = tf.T5Config(vocab_size=len(tok), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                          decoder_start_token_id=tok.pad_token_id, pad_token_id=tok.pad_token_id,
                          eos_token_id=tok.eos_token_id)
        model = tf.T5EncoderModel(cfg)
    else:
        raise ValueError(family)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
