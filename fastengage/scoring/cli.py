"""``fastengage score MODEL INPUT --id C -o OUT.parquet``: batch scoring from the command line.

Scores stream batch by batch from the input into the Parquet output (written to a temporary
file and renamed at the end, so a failed run never leaves a half-written output behind).
"""
from __future__ import annotations

import os
import sys

__all__ = ["add_score_command"]


def add_score_command(subparsers) -> None:
    """Register the ``score`` sub-command on an ``argparse`` sub-parsers object."""
    p = subparsers.add_parser(
        "score", help="score a model (ONNX, LightGBM text, fastengage JSON) over a Parquet input",
        description="Score every row of INPUT with MODEL and write the id plus score columns "
                    "(probability_<class> or value) to a Parquet file.")
    p.add_argument("model", metavar="MODEL", help="ONNX file, LightGBM text model, or fastengage linear JSON")
    p.add_argument("input", metavar="INPUT", help="Parquet file or directory of Parquet files")
    p.add_argument("--id", required=True, help="id column copied to the output")
    p.add_argument("-o", "--output", required=True, help="output Parquet file")
    p.add_argument("--features", help="comma-separated input columns in the model's feature order "
                                      "(default: the names stored in the model)")
    p.add_argument("--batch-size", type=int, default=262_144, help="rows per streamed batch")
    p.add_argument("--backend", choices=["auto", "native", "onnxruntime"], default="auto")
    p.add_argument("--nulls", choices=["error", "nan"], help="null rule (default: the path's own)")
    p.add_argument("--threads", type=int, help="worker threads (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_score)


def run_score(args) -> int:
    """Run ``score``; bad input ends with one ``fastengage: error: ...`` line and exit status 2."""
    import pyarrow.parquet as pq

    from .._io.sources import open_source
    from .._io.progress import ProgressBar
    from ..errors import FastEngageError
    from . import load_model

    tmp = f"{args.output}.partial"
    try:
        if args.batch_size is not None and args.batch_size < 1:
            raise ValueError(f"--batch-size must be positive, got {args.batch_size}")
        model = load_model(args.model, backend=args.backend)
        features = [f.strip() for f in args.features.split(",")] if args.features else None
        source = open_source(args.input)
        total = source._data.count_rows() if source.kind == "dataset" else None
        bar = None if args.quiet else ProgressBar(total)
        done = 0
        writer = None
        try:
            for batch in model.score_batches(source, id=args.id, features=features,
                                             batch_size=args.batch_size, n_threads=args.threads,
                                             nulls=args.nulls):
                if writer is None:
                    writer = pq.ParquetWriter(tmp, batch.schema)
                writer.write_batch(batch)
                done += batch.num_rows
                if bar is not None:
                    bar(done)
        finally:
            if writer is not None:
                writer.close()
        if bar is not None:
            bar.close(done)
        if writer is None:
            raise ValueError(f"input {args.input!r} has no rows to score")
        os.replace(tmp, args.output)
    except (FastEngageError, ValueError, OSError) as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        print(f"fastengage: error: {exc}", file=sys.stderr)
        return 2
    how = model.backend + (f" ({model.note})" if model.note else "")
    print(f"scored {done:,} rows with {how} -> {args.output}", file=sys.stderr)
    return 0
