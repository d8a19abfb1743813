"""The word tokenizer and vocabulary: deterministic, unknown words, specials, JSON, truncation."""

from __future__ import annotations

import json

import pytest

from prodcat.errors import ConfigError, ModelDirError
from prodcat.models.vocab import PAD, PAD_ID, UNK, UNK_ID, Vocabulary, tokenize

TITLES = [
    "Puma Men Grey T-shirt",
    "Nike Men Black Running Shoes",
    "Puma Women Grey T-Shirt",
    "Titan Men Black Watch",
    "Nike Women Running Shoes",
]


def test_tokenize_lowercases_and_splits_letters_from_digits_and_punctuation():
    assert tokenize("Puma Men's T-Shirt, 2-pack 32GB") == ["puma", "men", "s", "t", "shirt", "2", "pack", "32", "gb"]
    # Variants a shopper types all read the same.
    assert tokenize("T-shirt") == tokenize("t shirt") == tokenize("T_SHIRT") == ["t", "shirt"]
    assert tokenize("32GB") == tokenize("32 gb") == ["32", "gb"]
    assert tokenize("") == [] and tokenize("  --  ") == []


def test_tokenize_keeps_words_of_any_script_whole():
    # Combining vowel signs and viramas belong to the Hindi word.
    assert tokenize("हिन्दी किताब") == ["हिन्दी", "किताब"]
    # An accent written as a combining character is the same word as the precomposed one.
    assert tokenize("Cafe\u0301 CAFÉ") == ["café", "café"]
    # Full-width letters fold to plain ones.
    assert tokenize("ＴＳＨＩＲＴ") == ["tshirt"]


def test_build_is_deterministic_and_orders_by_frequency_then_alphabet():
    first = Vocabulary.build(TITLES)
    again = Vocabulary.build(list(TITLES))
    assert first.tokens == again.tokens
    assert first.tokens[:2] == [PAD, UNK]
    # men x3; grey, nike, puma, running, shirt, shoes, t, black, women x2 (alphabetical among equals)
    assert first.tokens[2] == "men"
    assert first.tokens[3:12] == sorted(first.tokens[3:12])
    assert set(first.tokens[12:]) == {"titan", "watch"}


def test_pad_and_unk_ids_and_unknown_words():
    vocab = Vocabulary.build(TITLES)
    assert vocab.id(PAD) == PAD_ID == 0 and vocab.id(UNK) == UNK_ID == 1
    ids = vocab.encode("Puma Kids Pink T-Shirt")
    assert ids == [vocab.id("puma"), UNK_ID, UNK_ID, vocab.id("t"), vocab.id("shirt")]
    assert PAD_ID not in vocab.encode(" ".join(TITLES))
    assert vocab.decode(ids + [PAD_ID]) == ["puma", UNK, UNK, "t", "shirt"]


def test_min_freq_and_max_size():
    vocab = Vocabulary.build(TITLES, min_freq=2)
    assert "titan" not in vocab and "men" in vocab and "grey" in vocab
    capped = Vocabulary.build(TITLES, max_size=4)
    assert capped.tokens == [PAD, UNK, "men", "black"]
    with pytest.raises(ConfigError, match="min_freq"):
        Vocabulary.build(TITLES, min_freq=0)
    with pytest.raises(ConfigError, match="max_size"):
        Vocabulary.build(TITLES, max_size=2)


def test_texts_that_look_like_special_tokens_do_not_take_their_ids():
    vocab = Vocabulary.build(["<pad> pad <unk> unk"])
    assert vocab.tokens == [PAD, UNK, "pad", "unk"]


def test_max_length_keeps_the_first_words():
    vocab = Vocabulary.build(TITLES)
    full = vocab.encode("Nike Men Black Running Shoes")
    assert len(full) == 5
    assert vocab.encode("Nike Men Black Running Shoes", max_length=2) == full[:2]
    assert vocab.encode_batch(["Nike Men Black Running Shoes", "Titan"], max_length=3) == [full[:3], [vocab.id("titan")]]
    assert vocab.encode_batch(TITLES) == [vocab.encode(t) for t in TITLES]


def test_each_cjk_ideograph_is_a_word_and_kana_hangul_runs_stay_whole():
    # Chinese and Japanese titles have no spaces: a run of ideographs is a title, not a word
    assert tokenize("纯棉男士T恤XL码") == ["纯", "棉", "男", "士", "t", "恤", "xl", "码"]
    assert tokenize("メンズ長袖シャツ") == ["メンズ", "長", "袖", "シャツ"]
    assert tokenize("남성 셔츠") == ["남성", "셔츠"]
    # an extension-B ideograph too
    assert tokenize("𠀀x") == ["𠀀", "x"]


def test_mixed_scripts_split_at_each_ideograph_only():
    assert tokenize("Puma纯棉T恤2件 café Ｔシャツ 한국어 iPhone用ケース") == [
        "puma", "纯", "棉", "t", "恤", "2", "件", "café", "tシャツ", "한국어", "iphone", "用", "ケース"]


def test_a_vocabulary_saved_before_ideographs_were_split_reads_them_as_it_was_trained():
    vocab = Vocabulary.build(["纯棉衬衫", "纯棉T恤"])
    assert vocab.encode("纯棉衬衫") == [vocab.id(c) for c in "纯棉衬衫"]
    old = {"tokens": [PAD, UNK, "纯棉衬衫", "纯棉t恤"]}  # a saved vocabulary without "split_ideographs"
    restored = Vocabulary.from_dict(old)
    assert restored.split_ideographs is False
    assert restored.encode("纯棉衬衫") == [2]
    assert Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict()))).split_ideographs is True
    with pytest.raises(ModelDirError, match="'split_ideographs' must be true or false"):
        Vocabulary.from_dict({**old, "split_ideographs": "yes"})


def test_json_round_trip_gives_the_same_ids():
    vocab = Vocabulary.build(TITLES + ["हिन्दी café"])
    restored = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert restored.tokens == vocab.tokens
    probe = TITLES + ["हिन्दी café unknownword"]
    assert restored.encode_batch(probe, 4) == vocab.encode_batch(probe, 4)


@pytest.mark.parametrize(
    "data, message",
    [
        ({}, "lacks 'tokens'"),
        ({"tokens": "abc"}, "list of strings"),
        ({"tokens": ["a", "b"]}, "must start with"),
        ({"tokens": [PAD, UNK, "a", "a"]}, "twice"),
    ],
)
def test_a_damaged_saved_vocabulary_is_a_model_dir_error(data, message):
    with pytest.raises(ModelDirError, match=message):
        Vocabulary.from_dict(data)
