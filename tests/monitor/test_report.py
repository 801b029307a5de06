"""monitor.report writes one self-contained HTML page that a browser renders with its tables.

The rendering test runs Debian's headless Chromium (``apt-get install -y chromium``); it is
skipped, saying so, only when no Chromium binary is on PATH."""
import base64
import re
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pytest

from fastengage.errors import InputError
from fastengage.monitor import drift, lift, quality, reliability, report


def _write(path):
    rng = np.random.default_rng(0)
    ref = pa.table({"x": rng.normal(size=2000), "s": rng.choice(["a", "b"], 2000)})
    cur = pa.table({"x": rng.normal(0.5, 1, 2000), "s": rng.choice(["a", "b", "c"], 2000)})
    p = rng.random(2000)
    scored = pa.table({"p": p, "y": (rng.random(2000) < p).astype(int),
                       "t": pa.array(rng.integers(0, 30, 2000) * 86_400_000_000,
                                     pa.timestamp("us"))})
    return report(path, drift=drift(ref, cur),
                  quality=quality(scored, score="p", label="y", time="t", window="7d"),
                  reliability=reliability(scored, score="p", label="y"),
                  lift=lift(scored, score="p", label="y"), title="Weekly <check>")


def test_page_is_self_contained_with_valid_pngs(tmp_path):
    html = open(_write(tmp_path / "r.html"), encoding="utf-8").read()
    assert "Weekly &lt;check&gt;" in html
    assert not re.search(r'src="(?!data:)', html) and "<link" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 4
    for img in images:
        assert base64.b64decode(img).startswith(b"\x89PNG\r\n\x1a\n")
    for table_id in ("drift-table", "quality-table", "reliability-table", "lift-table"):
        assert f'id="{table_id}"' in html
    with pytest.raises(InputError):
        report(tmp_path / "empty.html")


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.skipif(_chromium() is None,
                    reason="no Chromium on PATH: install Debian's package (apt-get install -y "
                           "chromium) to render the report in a real browser")
def test_report_renders_in_headless_chromium(tmp_path):
    path = _write(tmp_path / "r.html")
    proc = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         f"file://{path}"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    for table_id in ("drift-table", "quality-table", "reliability-table", "lift-table"):
        assert f'id="{table_id}"' in dom
    assert "columns drifted" in dom and dom.count("<img") == 4
    shot = tmp_path / "shot.png"
    subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                    f"--screenshot={shot}", "--window-size=1000,1400", f"file://{path}"],
                   capture_output=True, timeout=120)
    # the rendered page is not blank: many distinct colours (plots, highlighted rows)
    from matplotlib.image import imread

    pixels = imread(shot)[..., :3].reshape(-1, 3)
    assert len(np.unique((pixels * 255).astype(np.uint8), axis=0)) > 50
