"""``fastengage score MODEL INPUT --id C -o OUT.parquet``: batch scoring from the command line.

Scores stream batch by batch from the input into a temporary Parquet file in the output's folder,
which is fsynced and renamed over the output at the end (``fastengage._io.output.atomic_output``):
a failed, interrupted (SIGINT/SIGTERM) or out-of-space run leaves the previous output untouched
and no temporary file behind. Progress and messages go to stderr through writers that never fail
(``2>&-`` and ``2>/dev/full`` do not fail a run). A bad flag is one ``fastengage: error:`` line and
exit status 2.
"""
from __future__ import annotations

import argparse

__all__ = ["add_score_command"]


def add_score_command(subparsers) -> None:
    """Register the ``score`` sub-command on an ``argparse`` sub-parsers object."""
    from ..cli import positive_int  # the CLI's own flag types (imported when it registers us)

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
    p.add_argument("--batch-size", type=positive_int, default=262_144, help="rows per streamed batch")
    p.add_argument("--backend", choices=["auto", "native", "onnxruntime"], default="auto")
    p.add_argument("--nulls", choices=["error", "nan"], help="null rule (default: the path's own)")
    p.add_argument("--threads", type=positive_int, help="worker threads (default: all cores)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run_score)


def run_score(args) -> int:
    """Run ``score``; bad input ends with one ``fastengage: error: ...`` line and exit status 2.

    KeyboardInterrupt (SIGINT, and SIGTERM under the CLI's ``terminate_as_interrupt``) unwinds
    through ``atomic_output``, which removes the temporary file."""
    import pyarrow.parquet as pq

    from .._io.output import atomic_output, say
    from .._io.progress import ProgressBar
    from .._io.sources import open_source
    from ..errors import FastEngageError
    from . import load_model

    done = 0
    try:
        model = load_model(args.model, backend=args.backend)
        features = [f.strip() for f in args.features.split(",")] if args.features else None
        source = open_source(args.input)
        total = source._data.count_rows() if source.kind == "dataset" else None
        bar = None if args.quiet else ProgressBar(total)
        with atomic_output(args.output) as tmp:
            writer = None
            try:
                for batch in model.score_batches(source, id=args.id, features=features,
                                                 batch_size=args.batch_size,
                                                 n_threads=args.threads, nulls=args.nulls):
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, batch.schema)
                    writer.write_batch(batch)
                    done += batch.num_rows
                    if bar is not None:
                        bar(done)
            finally:
                if writer is not None:
                    writer.close()
            if writer is None:
                raise ValueError(f"input {args.input!r} has no rows to score")
        if bar is not None:
            bar.close(done)
    except (FastEngageError, ValueError, OSError) as exc:
        say(f"fastengage: error: {exc}")
        return 2
    how = model.backend + (f" ({model.note})" if model.note else "")
    say(f"scored {done:,} rows with {how} -> {args.output}")
    return 0
