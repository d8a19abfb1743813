"""A tiny BERT checkpoint made in code, so `bert` tests train in seconds offline.

A 2-layer, 32-wide BertModel with random weights and a WordPiece tokenizer
trained on the tiny catalogs' words, saved with `save_pretrained` exactly like
a downloaded checkpoint directory. It is built once per test process, on
first use, into a temporary directory removed at exit.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from tiny_catalogs import tiny_frame

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
N_LAYERS = 2


def build_tiny_checkpoint(directory: Path, texts: list[str]) -> Path:
    """Write a tiny BERT checkpoint (config, weights, tokenizer) to `directory`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
        sep_token="[SEP]", mask_token="[MASK]", model_max_length=64,
    )
    fast.save_pretrained(directory)

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(), hidden_size=32, num_hidden_layers=N_LAYERS, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64, pad_token_id=tokenizer.token_to_id("[PAD]"),
    )
    BertModel(config).save_pretrained(directory)
    return directory


@functools.cache
def tiny_checkpoint() -> str:
    """The path of this process's tiny checkpoint, built on first call."""
    directory = Path(tempfile.mkdtemp(prefix="prodcat-tiny-bert-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    frame = tiny_frame()
    build_tiny_checkpoint(directory, (frame["title"] + " " + frame["description"]).tolist())
    return str(directory)
