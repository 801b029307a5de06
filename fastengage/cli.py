"""The ``fastengage`` command line: ``rfm``, ``demo`` (and ``score`` when scoring is installed).

Bad input or a bad flag ends with a one-line ``fastengage: error: ...`` on stderr and exit status
2. Outputs are written atomically (temporary file in the same folder, fsync, rename): an
interrupted or failed run leaves the previous output untouched. Progress and messages go to
stderr and never fail a run, even when stderr is closed or full.
"""
from __future__ import annotations

import argparse
import sys

from ._io.output import atomic_output, say, silence_broken_stderr, terminate_as_interrupt
from .errors import FastEngageError


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage dump) and exit status 2."""

    def error(self, message):
        say(f"{self.prog}: error: {message}")
        silence_broken_stderr()
        raise SystemExit(2)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _add_rfm(sub) -> None:
    p = sub.add_parser("rfm", help="RFM features per customer from a transaction file",
                       description="Compute RFM features (see fastengage.rfm) and write Parquet.")
    p.add_argument("input", help="Parquet file or directory of Parquet files")
    p.add_argument("--customer", required=True, help="customer id column")
    p.add_argument("--time", required=True, help="event time column (timestamp or date)")
    p.add_argument("--amount", required=True, help="amount column (negative = return)")
    p.add_argument("--order", help="order/invoice id column (frequency = distinct orders)")
    p.add_argument("--as-of", help="point in time, ISO date or datetime (default: latest event)")
    p.add_argument("--returns", choices=["net", "exclude", "error"], default="net")
    p.add_argument("--drop-null-customers", action="store_true",
                   help="drop rows with a null customer id (the count is reported)")
    p.add_argument("--batch-size", type=positive_int, default=1_000_000,
                   help="rows per streamed batch")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="worker threads (default: FASTENGAGE_NUM_THREADS, else all cores)")
    p.add_argument("-o", "--output", required=True, help="output Parquet file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_run_rfm)


def _run_rfm(args) -> int:
    import json

    import pyarrow.parquet as pq

    from ._io.sources import open_source
    from ._io.progress import ProgressBar
    from .features import rfm

    source = open_source(args.input)
    total = source.num_rows if source.num_rows is not None else (
        source._data.count_rows() if source.kind == "dataset" else None)
    bar = None if args.quiet else ProgressBar(total)
    options = {} if args.threads is None else {"n_threads": args.threads}
    result = rfm(source, customer=args.customer, time=args.time, amount=args.amount,
                 order=args.order, as_of=args.as_of, returns=args.returns,
                 drop_null_customers=args.drop_null_customers, batch_size=args.batch_size,
                 progress=bar, **options)
    report = json.loads(result.schema.metadata[b"fastengage"])
    if bar is not None:
        bar.close(report["rows_read"])
    with atomic_output(args.output) as tmp:
        pq.write_table(result, tmp)
    say(f"wrote {result.num_rows:,} customers to {args.output} "
        f"(rows read {report['rows_read']:,}, null customers dropped "
        f"{report['null_customer_rows_dropped']:,}, after as_of {report['rows_after_as_of']:,}, "
        f"returns {report['return_rows']:,})")
    return 0


def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="run every capability on the bundled real data")
    p.add_argument("--out", default="fastengage-demo", help="output folder (default: ./fastengage-demo)")
    p.set_defaults(run=_run_demo)


def _run_demo(args) -> int:
    from .demo import run_demo

    return run_demo(args.out)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fastengage", description=__doc__.splitlines()[0])
    from . import __version__

    parser.add_argument("--version", action="version", version=f"fastengage {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _add_rfm(sub)
    _add_demo(sub)
    try:
        from .scoring.cli import add_score_command
    except ImportError:
        pass
    else:
        add_score_command(sub)
    from .tools.benchrun import add_bench_command
    from .tools.warmup import add_warmup_command

    add_warmup_command(sub)
    add_bench_command(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with terminate_as_interrupt():
            return args.run(args)
    except (FastEngageError, OSError) as exc:
        say(f"fastengage: error: {exc}")
        return 2
    except KeyboardInterrupt:
        say("fastengage: interrupted; no output was written")
        return 130
    finally:
        silence_broken_stderr()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
