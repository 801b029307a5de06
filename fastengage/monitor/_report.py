"""One self-contained HTML page with the monitoring tables and plots (PNGs inlined as base64),
so it can be mailed, attached to a ticket or opened from disk without a server."""
from __future__ import annotations

import base64
import html
import io
import os

import pyarrow as pa

from ..errors import InputError

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f0f0f0}
td.l{text-align:left}tr.drift td{background:#fde2e2}img{max-width:720px;display:block}
h2{margin-top:1.6em;border-bottom:1px solid #ddd}"""


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _table_html(table: pa.Table, table_id: str, highlight: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(n)}</th>" for n in table.column_names)
    rows = []
    for row in table.to_pylist():
        cls = ' class="drift"' if highlight and row.get(highlight) else ""
        cells = "".join(
            f'<td class="l">{html.escape(_fmt(v))}</td>' if isinstance(v, (str, list)) or v is None
            else f"<td>{html.escape(_fmt(v))}</td>" for v in row.values())
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return '<img alt="plot" src="data:image/png;base64,' + \
        base64.b64encode(buf.getvalue()).decode("ascii") + '">'


def _drift_plot(drift: pa.Table) -> str:
    import matplotlib.pyplot as plt

    rows = [r for r in drift.to_pylist() if r["psi"] is not None]
    if not rows:
        return ""
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    ax.barh([r["column"] for r in rows], [r["psi"] for r in rows],
            color=["#d62728" if r["drift"] else "#1f77b4" for r in rows])
    ax.axvline(0.2, color="grey", ls="--", lw=1)
    ax.set_xlabel("PSI (red: drift flagged; dashed: 0.2)")
    ax.invert_yaxis()
    return _png(fig)


def _reliability_plot(rel: pa.Table) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1)
    ax.plot(rel["mean_predicted"].to_numpy(), rel["fraction_positive"].to_numpy(), "o-")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("fraction of positives")
    ax.set_title("Reliability")
    return _png(fig)


def _lift_plot(lift: pa.Table) -> str:
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    d = lift["decile"].to_numpy()
    a.bar(d, lift["lift"].to_numpy())
    a.axhline(1, color="grey", ls="--", lw=1)
    a.set_xlabel("decile (1 = highest scores)")
    a.set_ylabel("lift")
    b.plot([0, *d / 10], [0, *lift["cumulative_gain"].to_numpy()], "o-")
    b.plot([0, 1], [0, 1], color="grey", ls="--", lw=1)
    b.set_xlabel("share targeted")
    b.set_ylabel("share of positives (gain)")
    return _png(fig)


def _quality_plot(quality: pa.Table) -> str:
    import matplotlib.pyplot as plt

    if "window_start" not in quality.column_names or quality.num_rows < 2:
        return ""
    fig, ax = plt.subplots(figsize=(7, 3))
    seg = [c for c in quality.column_names if c not in (
        "window_start", "n", "positives", "auc", "log_loss", "brier", "ece", "precision_at_k",
        "recall_at_k", "k")]
    groups = {}
    for row in quality.to_pylist():
        groups.setdefault(row[seg[0]] if seg else "all", []).append(row)
    for name, rows in groups.items():
        ax.plot([r["window_start"] for r in rows], [r["auc"] for r in rows], "o-", label=str(name))
    ax.set_ylabel("AUC")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


def report(path, *, drift: pa.Table | None = None, quality: pa.Table | None = None,
           reliability: pa.Table | None = None, lift: pa.Table | None = None,
           experiments: pa.Table | None = None, title: str = "fastengage monitoring report",
           notes: str = "") -> str:
    """Write one self-contained HTML page (tables + matplotlib plots inlined as PNG) and return
    its path. Pass any of the tables returned by :func:`drift`, :func:`quality`,
    :func:`reliability`, :func:`lift` and ``fastengage.experiments.readout``."""
    if all(t is None for t in (drift, quality, reliability, lift, experiments)):
        raise InputError("report() needs at least one table (drift=, quality=, reliability=, "
                         "lift= or experiments=)")
    import matplotlib

    matplotlib.use("Agg", force=False)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    if notes:
        parts.append(f"<p>{html.escape(notes)}</p>")
    if drift is not None:
        flagged = sum(bool(v) for v in drift["drift"].to_pylist())
        parts.append(f"<h2>Drift</h2><p id='drift-summary'>{flagged} of {drift.num_rows} "
                     "columns drifted.</p>")
        parts.append(_drift_plot(drift))
        parts.append(_table_html(drift, "drift-table", highlight="drift"))
    if quality is not None:
        parts.append("<h2>Model quality</h2>" + _quality_plot(quality))
        parts.append(_table_html(quality, "quality-table"))
    if reliability is not None:
        parts.append("<h2>Calibration</h2>" + _reliability_plot(reliability))
        parts.append(_table_html(reliability, "reliability-table"))
    if lift is not None:
        parts.append("<h2>Lift and gain</h2>" + _lift_plot(lift))
        parts.append(_table_html(lift, "lift-table"))
    if experiments is not None:
        parts.append("<h2>Experiments</h2>" + _table_html(experiments, "experiments-table"))
    parts.append("</body></html>")
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(parts))
    return path
