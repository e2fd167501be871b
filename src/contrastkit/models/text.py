"""CLIP's text side: a word-level tokenizer and a small Transformer text encoder.

The tokenizer lower-cases a caption, splits it into words, maps each word to its id in a
vocabulary built from the training captions (unknown words -> ``<unk>``), wraps the ids in
``<bos> ... <eos>`` and pads to a fixed length with ``<pad>``. Its vocabulary is plain JSON
(``to_dict`` / ``from_dict``), so a run's ``config.json`` rebuilds exactly the same tokenizer.

The encoder embeds the ids, adds learned position embeddings, runs a pre-norm
``nn.TransformerEncoder`` that ignores padding, and returns the output at the ``<eos>`` token
(CLIP pools at the end-of-text token too).

Letters used in shapes: B batch size, L context length (tokens per caption), W text width.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(len(SPECIAL_TOKENS))

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def split_words(text: str) -> list[str]:
    """Lower-case ``text`` and split it into words (letters and digits; punctuation dropped)."""
    return _WORD.findall(text.lower())


class Tokenizer:
    """Word-level tokenizer with a fixed context length.

    Args:
        words: the vocabulary without the special tokens, in id order (ids start after them).
        context_length: L, the number of ids per caption including ``<bos>`` and ``<eos>``;
            longer captions are truncated (``<eos>`` is kept as the last id).
    """

    def __init__(self, words: Sequence[str], context_length: int = 16) -> None:
        words = list(words)
        if context_length < 3:
            raise ValueError(
                f"context_length must be >= 3 (<bos>, one word, <eos>), got {context_length}"
            )
        bad = [w for w in words if not isinstance(w, str) or split_words(w) != [w]]
        if bad:
            raise ValueError(
                f"words must be lower-case single words, got {bad[:3]} ({len(bad)} in all)"
            )
        if len(set(words)) != len(words):
            dupes = sorted(w for w, n in Counter(words).items() if n > 1)
            raise ValueError(f"words must be unique, got duplicates {dupes[:3]}")
        self.words = words
        self.context_length = int(context_length)
        self.vocab: dict[str, int] = {w: i for i, w in enumerate([*SPECIAL_TOKENS, *words])}
        self._inverse = [*SPECIAL_TOKENS, *words]

    @classmethod
    def build(
        cls, captions: Iterable[str], *, context_length: int | None = None, min_count: int = 1
    ) -> Tokenizer:
        """Build the vocabulary from training captions.

        Args:
            captions: every training caption; none may be empty.
            context_length: L; default: the longest caption's word count + 2.
            min_count: keep words seen at least this often (rarer ones become ``<unk>``).

        Raises:
            ValueError: no captions, or a caption without any word (its index is named).
        """
        counts: Counter[str] = Counter()
        longest = 0
        n = 0
        for i, caption in enumerate(captions):
            words = split_words(caption) if isinstance(caption, str) else []
            if not words:
                raise ValueError(
                    f"captions[{i}] is {caption!r}; every caption needs at least one word"
                )
            counts.update(words)
            longest = max(longest, len(words))
            n += 1
        if n == 0:
            raise ValueError("captions is empty; the vocabulary needs at least one caption")
        # most frequent first, ties alphabetical: the same captions always give the same ids
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls(kept, context_length=context_length or longest + 2)

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included."""
        return len(self._inverse)

    def encode(self, text: str) -> Tensor:
        """Map one caption to ids: (L,) long, ``<bos> words... <eos> <pad>...``.

        Raises:
            ValueError: ``text`` has no word.
        """
        words = split_words(text) if isinstance(text, str) else []
        if not words:
            raise ValueError(f"text is {text!r}; expected a caption with at least one word")
        body = [self.vocab.get(w, UNK_ID) for w in words][: self.context_length - 2]
        ids = [BOS_ID, *body, EOS_ID]
        ids += [PAD_ID] * (self.context_length - len(ids))
        return torch.tensor(ids, dtype=torch.long)

    def __call__(self, texts: str | Sequence[str]) -> Tensor:
        """Encode a caption (L,) or a list of captions (B, L)."""
        if isinstance(texts, str):
            return self.encode(texts)
        if len(texts) == 0:
            raise ValueError("texts is an empty list; expected at least one caption")
        return torch.stack([self.encode(t) for t in texts])

    def decode(self, ids: Tensor | Sequence[int]) -> str:
        """Map ids (L,) back to text, dropping ``<bos>``, ``<eos>`` and padding."""
        out = []
        for i in torch.as_tensor(ids).tolist():
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                out.append(self._inverse[i])
        return " ".join(out)

    def to_dict(self) -> dict:
        """Return a JSON-ready description: ``{"words": [...], "context_length": L}``."""
        return {"words": list(self.words), "context_length": self.context_length}

    @classmethod
    def from_dict(cls, state: dict) -> Tokenizer:
        """Rebuild the tokenizer saved by ``to_dict``."""
        if not isinstance(state, dict) or "words" not in state:
            raise ValueError(
                f"tokenizer state must be a dict with 'words', got {type(state).__name__}"
            )
        return cls(state["words"], context_length=state.get("context_length", 16))

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, context_length={self.context_length})"


class TextEncoder(nn.Module):
    """A small Transformer over token ids, pooled at the ``<eos>`` token.

    Token embedding + learned position embedding, ``depth`` pre-norm Transformer layers with a
    padding mask (padding is never attended to), a final LayerNorm, and the output at each
    caption's ``<eos>``.

    Args:
        vocab_size: number of ids (``Tokenizer.vocab_size``).
        context_length: L, the most ids per caption.
        width: W, the model width (``feature_dim``).
        depth: number of Transformer layers.
        heads: attention heads; must divide ``width``.
        mlp_ratio: hidden width of each feed-forward block, as a multiple of W.
        dropout: dropout inside the layers (CLIP uses none).
    """

    def __init__(
        self,
        vocab_size: int,
        context_length: int,
        width: int = 512,
        depth: int = 12,
        heads: int = 8,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("context_length", context_length)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if width < 1 or depth < 1 or heads < 1 or width % heads:
            raise ValueError(
                f"text tower needs width, depth, heads >= 1 with heads dividing width, got "
                f"width={width}, depth={depth}, heads={heads}"
            )
        self.context_length = context_length
        self.token_embedding = nn.Embedding(vocab_size, width, padding_idx=PAD_ID)
        self.position_embedding = nn.Parameter(torch.zeros(1, context_length, width))
        layer = nn.TransformerEncoderLayer(
            width,
            heads,
            dim_feedforward=int(width * mlp_ratio),
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.feature_dim = width
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.01)

    def forward(self, ids: Tensor) -> Tensor:
        """Encode token ids (B, L) -> (B, W), the output at each row's ``<eos>``."""
        if ids.ndim != 2 or ids.dtype != torch.long:
            raise ValueError(
                f"ids must be a (B, L) long tensor, got shape {tuple(ids.shape)} {ids.dtype}"
            )
        if ids.shape[1] > self.context_length:
            raise ValueError(
                f"ids has {ids.shape[1]} tokens per row; this encoder takes at most "
                f"{self.context_length}"
            )
        L = ids.shape[1]
        x = self.token_embedding(ids) + self.position_embedding[:, :L]  # (B, L, W)
        x = self.transformer(x, src_key_padding_mask=ids == PAD_ID)
        x = self.norm(x)
        # first <eos> in each row; a row without one (never made by Tokenizer) pools the last id
        is_eos = ids == EOS_ID
        last = torch.full_like(ids[:, 0], L - 1)
        eos = torch.where(is_eos.any(dim=1), is_eos.int().argmax(dim=1), last)  # (B,)
        return x[torch.arange(ids.shape[0], device=ids.device), eos]


__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "SPECIAL_TOKENS",
    "UNK",
    "TextEncoder",
    "Tokenizer",
    "split_words",
]
