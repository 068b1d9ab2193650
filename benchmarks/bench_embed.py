"""ai_embed's provider: our embedder over distinct texts against ``SentenceTransformer.encode`` on the
same list (goal: within 10%), and a second run over the same texts from the persistent cache
(goal: at least 50x faster than the first).

Texts are distinct "notes" made of two review sentences from ../shared/data/sentiment and a row
number. Both contenders use the same loaded all-MiniLM-L6-v2 and the same batch size; wall time
and CPU time (all threads) are reported because the machine may be shared.

Run: ``.venv/bin/python benchmarks/bench_embed.py [--texts 20000]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from _common import write_result

from aiw.providers.embeddings import CachedEmbedder, SentenceEmbedder, get_embedder
from aiw.settings import EmbeddingSettings

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment"


def _texts(n: int) -> list[str]:
    sentences = [
        line.rsplit("\t", 1)[0]
        for path in sorted(DATA.glob("*.tsv"))
        for line in path.read_text(encoding="utf-8").splitlines()[1:]
        if line.strip()
    ]
    k = len(sentences)
    return [f"{sentences[i % k]} {sentences[(i // k + 7 * i) % k]} #{i}" for i in range(n)]


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--texts", type=int, default=20_000, help="distinct texts embedded")
    parser.add_argument("--block", type=int, default=1_000, help="texts per alternating block")
    args = parser.parse_args()

    settings = EmbeddingSettings()  # type: ignore[call-arg]
    texts = _texts(args.texts)
    assert len(set(texts)) == len(texts)
    print(f"{len(texts):,} distinct texts, batch size {settings.batch_size}")

    plain = SentenceEmbedder(settings)
    model = plain.model
    model.encode(texts[:64], batch_size=settings.batch_size)  # warm both paths up (same weights)

    with tempfile.TemporaryDirectory() as cache_dir:
        ours = get_embedder(settings, Path(cache_dir))
        assert isinstance(ours, CachedEmbedder)

        # The machine may be shared: alternate the contenders block by block (who goes first
        # alternates too) so that a burst of load elsewhere hits both alike.
        peer_parts, first_parts = [], []
        peer_wall = peer_cpu = first_wall = first_cpu = 0.0
        for b, start in enumerate(range(0, len(texts), args.block)):
            block = texts[start : start + args.block]
            order = ("peer", "ours") if b % 2 == 0 else ("ours", "peer")
            for who in order:
                if who == "peer":
                    vectors, wall, cpu = _timed(
                        lambda block=block: model.encode(
                            block,
                            batch_size=settings.batch_size,
                            normalize_embeddings=True,
                            convert_to_numpy=True,
                            show_progress_bar=False,
                        )
                    )
                    peer_parts.append(vectors)
                    peer_wall, peer_cpu = peer_wall + wall, peer_cpu + cpu
                else:
                    vectors, wall, cpu = _timed(ours.embed, block)
                    first_parts.append(vectors)
                    first_wall, first_cpu = first_wall + wall, first_cpu + cpu
        peer_vectors, first = np.concatenate(peer_parts), np.concatenate(first_parts)
        print(
            f"SentenceTransformer.encode: {len(texts) / peer_wall:8.1f} texts/s "
            f"({peer_wall:.1f} s, cpu {peer_cpu:.1f} s)"
        )
        print(
            f"ours, first run:            {len(texts) / first_wall:8.1f} texts/s "
            f"({first_wall:.1f} s, cpu {first_cpu:.1f} s)"
        )
        fresh = get_embedder(settings, Path(cache_dir))  # a new object: only the file is shared
        second, second_wall, second_cpu = _timed(fresh.embed, texts)
        print(f"ours, second run (cache):   {len(texts) / second_wall:8.1f} texts/s ({second_wall:.3f} s)")
        cache_bytes = (Path(cache_dir) / CachedEmbedder.FILENAME).stat().st_size

    max_diff_peer = float(np.abs(first - peer_vectors).max())
    assert np.array_equal(first, second), "the cache must return the stored vectors bit for bit"
    path = write_result(
        "embed",
        {
            "texts": len(texts),
            "model": plain.model_id,
            "batch_size": settings.batch_size,
            "block": args.block,
            "torch_threads": __import__("torch").get_num_threads(),
            "load_average_at_end": os.getloadavg(),
            "texts_per_s": {
                "sentence_transformers_encode": len(texts) / peer_wall,
                "ours_first_run": len(texts) / first_wall,
                "ours_second_run_cached": len(texts) / second_wall,
            },
            "seconds": {
                "sentence_transformers_encode": peer_wall,
                "ours_first_run": first_wall,
                "ours_second_run_cached": second_wall,
            },
            "cpu_seconds": {
                "sentence_transformers_encode": peer_cpu,
                "ours_first_run": first_cpu,
                "ours_second_run_cached": second_cpu,
            },
            "ratios": {
                "ours_first_vs_encode_wall": round(peer_wall / first_wall, 3),
                "ours_first_vs_encode_cpu": round(peer_cpu / first_cpu, 3),
                "second_run_speedup_vs_first": round(first_wall / second_wall, 1),
            },
            "goals_met": {
                "first_run_within_10_percent_of_encode_wall": first_wall <= 1.10 * peer_wall,
                "first_run_within_10_percent_of_encode_cpu": first_cpu <= 1.10 * peer_cpu,
                "second_run_at_least_50x_faster": first_wall >= 50 * second_wall,
            },
            "max_abs_diff_vs_encode": max_diff_peer,
            "cache_file_bytes": cache_bytes,
        },
    )
    print(f"max |ours - encode| = {max_diff_peer:.2e}; wrote {path}")


if __name__ == "__main__":
    main()
