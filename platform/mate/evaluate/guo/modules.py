"""The three networks of Guo et al.'s text-motion matching evaluator (CVPR 2022), laid out so that the published
`text_mot_match/model/finest.tar` loads into them with `load_state_dict(strict=True)`.

Parameter names, shapes and the order of layers inside each `nn.Sequential` are what fix the checkpoint's keys, so they
follow the published models exactly; the code itself is ours. Sizes (the published options, the same for HumanML3D and
KIT-ML; only the pose width differs):

- text:     GloVe 300 + POS one-hot 15 (through a linear, added), 512-wide bi-GRU with a learned initial state,
            output net Linear(1024, 512) - LayerNorm - LeakyReLU(0.2) - Linear(512, 512)
- movement: two Conv1d(k=4, s=2, p=1), each followed by Dropout(0.2) and LeakyReLU(0.2), over the pose features minus
            the 4 foot contacts (259 for HumanML3D, 247 for KIT-ML), then Linear(512, 512); 4x fewer time steps
- motion:   Linear(512, 1024), 1024-wide bi-GRU over the movement codes (packed to length // 4), output net
            Linear(2048, 1024) - LayerNorm - LeakyReLU(0.2) - Linear(1024, 512)

All three return one 512-d vector per sample (the text and motion co-embeddings) or, for the movement encoder, a
sequence. The GRUs read packed sequences, so they need lengths sorted longest first (`pack_padded_sequence`'s default),
as the original batches are; `GuoEvaluator` sorts and puts the results back in input order.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

WORD_DIM = 300  # GloVe
POS_DIM = 15  # len(POS_ENUMERATOR)
TEXT_HIDDEN = 512
MOTION_HIDDEN = 1024
MOVEMENT_HIDDEN = 512
MOVEMENT_LATENT = 512
EMBED_DIM = 512  # the co-embedding both encoders output
FOOT_CONTACT_DIMS = 4  # the last 4 pose features; the movement encoder never sees them
UNIT_LENGTH = 4  # time downsampling of the movement encoder

# The three state dicts inside finest.tar, under these keys.
CHECKPOINT_MODULES = ("text_encoder", "movement_encoder", "motion_encoder")


def _xavier(m: nn.Module) -> None:
    if isinstance(m, (nn.Linear, nn.Conv1d)):
        nn.init.xavier_normal_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def _output_net(hidden: int, out: int) -> nn.Sequential:
    # indices 0, 1, 3 carry parameters: output_net.{0,1,3}.{weight,bias}
    return nn.Sequential(nn.Linear(hidden * 2, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, out))


def _bigru_last(gru: nn.GRU, h0: nn.Parameter, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Final forward and backward states of a bi-GRU over packed (sorted, longest first) sequences, concatenated."""
    hidden = h0.repeat(1, x.shape[0], 1)
    packed = pack_padded_sequence(x, lengths.detach().cpu().long(), batch_first=True)
    _, last = gru(packed, hidden)
    return torch.cat([last[0], last[1]], dim=-1)


class TextEncoderBiGRUCo(nn.Module):
    """Word vectors + POS one-hots -> 512-d text co-embedding.

    Keys: hidden (2, 1, 512); pos_emb (15 -> 300); input_emb (300 -> 512); gru (bi, 512); output_net.{0,1,3}.
    """

    def __init__(self, word_size: int = WORD_DIM, pos_size: int = POS_DIM, hidden_size: int = TEXT_HIDDEN,
                 output_size: int = EMBED_DIM):
        super().__init__()
        self.hidden_size = hidden_size
        self.pos_emb = nn.Linear(pos_size, word_size)
        self.input_emb = nn.Linear(word_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = _output_net(hidden_size, output_size)
        for m in (self.pos_emb, self.input_emb, self.output_net):
            m.apply(_xavier)
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden_size))

    def forward(self, word_embs: torch.Tensor, pos_onehot: torch.Tensor, cap_lens: torch.Tensor) -> torch.Tensor:
        """word_embs (B, L, 300), pos_onehot (B, L, 15), cap_lens (B,) sorted longest first -> (B, 512)."""
        x = self.input_emb(word_embs + self.pos_emb(pos_onehot))
        return self.output_net(_bigru_last(self.gru, self.hidden, x, cap_lens))


class MovementConvEncoder(nn.Module):
    """Normalised pose features without foot contacts (B, T, D-4) -> movement codes (B, T//4, 512).

    Keys: main.0 (Conv1d D-4 -> 512), main.3 (Conv1d 512 -> 512), out_net (512 -> 512); main.{1,4} are Dropout and
    main.{2,5} LeakyReLU, which is why the convolutions sit at 0 and 3.
    """

    def __init__(self, input_size: int, hidden_size: int = MOVEMENT_HIDDEN, output_size: int = MOVEMENT_LATENT):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1),
            nn.Dropout(0.2),
            nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(output_size, output_size)
        self.main.apply(_xavier)
        self.out_net.apply(_xavier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_net(self.main(x.transpose(1, 2)).transpose(1, 2))


class MotionEncoderBiGRUCo(nn.Module):
    """Movement codes (B, T//4, 512) with lengths (B,) in code steps, sorted longest first -> (B, 512).

    Keys: hidden (2, 1, 1024); input_emb (512 -> 1024); gru (bi, 1024); output_net.{0,1,3}.
    """

    def __init__(self, input_size: int = MOVEMENT_LATENT, hidden_size: int = MOTION_HIDDEN,
                 output_size: int = EMBED_DIM):
        super().__init__()
        self.hidden_size = hidden_size
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = _output_net(hidden_size, output_size)
        self.input_emb.apply(_xavier)
        self.output_net.apply(_xavier)
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden_size))

    def forward(self, movements: torch.Tensor, m_lens: torch.Tensor) -> torch.Tensor:
        return self.output_net(_bigru_last(self.gru, self.hidden, self.input_emb(movements), m_lens))


def build_modules(dim_pose: int) -> dict[str, nn.Module]:
    """Freshly initialised networks for a `dim_pose`-wide feature set (263 HumanML3D, 251 KIT-ML), keyed as in
    finest.tar."""
    return {
        "text_encoder": TextEncoderBiGRUCo(),
        "movement_encoder": MovementConvEncoder(dim_pose - FOOT_CONTACT_DIMS),
        "motion_encoder": MotionEncoderBiGRUCo(),
    }
