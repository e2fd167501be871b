import json

import pytest
import torch

from contrastkit.models.text import EOS, PAD, UNK, TextEncoder, Tokenizer, split_words

CAPTIONS = ["a red star", "a photo of a small blue circle", "A picture of a Green Square."]


def test_split_words_lowercases_and_drops_punctuation():
    assert split_words("A picture of a Green Square.") == [
        "a",
        "picture",
        "of",
        "a",
        "green",
        "square",
    ]


def test_tokenizer_round_trips_known_captions():
    tok = Tokenizer.build(CAPTIONS)
    for caption in CAPTIONS:
        ids = tok.encode(caption)
        assert ids.shape == (tok.context_length,)
        assert tok.decode(ids) == " ".join(split_words(caption))


def test_tokenizer_layout_bos_words_eos_padding():
    tok = Tokenizer.build(CAPTIONS)
    assert tok.context_length == 7 + 2  # the longest caption has 7 words
    ids = tok.encode("a red star").tolist()
    assert ids[0] == tok.vocab["<bos>"]
    assert ids[4] == tok.vocab[EOS]
    assert ids[5:] == [tok.vocab[PAD]] * (tok.context_length - 5)


def test_unknown_words_map_to_unk():
    tok = Tokenizer.build(CAPTIONS)
    ids = tok.encode("a purple star").tolist()
    assert ids[2] == tok.vocab[UNK]
    assert tok.decode(ids) == f"a {UNK} star"


def test_long_captions_are_truncated_but_keep_eos():
    tok = Tokenizer(["a", "red", "star"], context_length=4)
    ids = tok.encode("a red star a red star").tolist()
    assert len(ids) == 4 and ids[-1] == tok.vocab[EOS]


def test_vocabulary_is_deterministic_and_survives_json():
    tok = Tokenizer.build(CAPTIONS)
    again = Tokenizer.build(list(CAPTIONS))
    assert tok.words == again.words
    assert tok.words[0] == "a"  # the most frequent word first
    restored = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    assert restored.vocab == tok.vocab and restored.context_length == tok.context_length
    assert torch.equal(restored(CAPTIONS), tok(CAPTIONS))


@pytest.mark.parametrize("bad", ["", "   ", "?!"])
def test_empty_caption_is_refused(bad):
    with pytest.raises(ValueError, match=r"captions\[1\]"):
        Tokenizer.build(["a red star", bad])
    with pytest.raises(ValueError, match="at least one word"):
        Tokenizer.build(CAPTIONS).encode(bad)


def test_bad_vocabularies_are_refused():
    with pytest.raises(ValueError, match="captions is empty"):
        Tokenizer.build([])
    with pytest.raises(ValueError, match="unique"):
        Tokenizer(["red", "red"])
    with pytest.raises(ValueError, match="single words"):
        Tokenizer(["red star"])
    with pytest.raises(ValueError, match="context_length"):
        Tokenizer(["red"], context_length=2)


def test_text_encoder_pools_at_eos_and_ignores_padding():
    torch.manual_seed(0)
    tok = Tokenizer.build(CAPTIONS)
    enc = TextEncoder(tok.vocab_size, tok.context_length, width=16, depth=2, heads=2).eval()
    ids = tok(CAPTIONS)  # (3, L)
    out = enc(ids)
    assert out.shape == (3, 16) and enc.feature_dim == 16
    # the same caption with a longer context (more padding) gives the same output
    longer = Tokenizer(tok.words, context_length=tok.context_length + 5)
    enc_long = TextEncoder(tok.vocab_size, longer.context_length, width=16, depth=2, heads=2)
    with torch.no_grad():
        enc_long.load_state_dict(
            {
                k: (v if k != "position_embedding" else enc_long.position_embedding)
                for k, v in enc.state_dict().items()
            }
        )
        enc_long.position_embedding[:, : tok.context_length] = enc.position_embedding
    torch.testing.assert_close(enc_long.eval()(longer(CAPTIONS)), out, rtol=1e-5, atol=1e-5)
    # gradients reach the token embeddings. Not through ``.sum()``: the output ends in a
    # LayerNorm, whose sum over features has an exactly zero gradient; a fixed random direction
    # has a gradient of order one.
    direction = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    (enc.train()(ids) * direction).sum().backward()
    assert enc.token_embedding.weight.grad.abs().sum() > 1e-3


def test_text_encoder_rejects_bad_ids():
    enc = TextEncoder(10, 8, width=8, depth=1, heads=2)
    with pytest.raises(ValueError, match=r"\(B, L\) long"):
        enc(torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match="at most 8"):
        enc(torch.zeros(2, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="heads dividing width"):
        TextEncoder(10, 8, width=10, depth=1, heads=4)
