"""The report rendered by headless Chromium: every image decodes, and the plots are visible.

Skipped only when /usr/bin/chromium is absent (CI installs it: apt-get install -y chromium).
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import subprocess

import numpy as np
import pytest

from gensweep.platform.report import build_report
from tests.report_support import EXPERIMENT, make_store

CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 4000

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")

# Test-only probe (the report itself has no script): after load, write every image's decoded
# size and page position into the DOM, which --dump-dom then prints.
PROBE = """<script>
window.addEventListener("load", function () {
  var out = [];
  for (var im of document.images) {
    var r = im.getBoundingClientRect();
    out.push({id: im.id, naturalWidth: im.naturalWidth, naturalHeight: im.naturalHeight,
              complete: im.complete, x: r.left + window.scrollX, y: r.top + window.scrollY,
              w: r.width, h: r.height});
  }
  var pre = document.createElement("pre");
  pre.id = "probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / "chromium-profile"
    profile.mkdir(exist_ok=True)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", "--hide-scrollbars", *args]
    env = {**os.environ, "HOME": str(tmp_path)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, check=False)


def test_report_renders_in_chromium(tmp_path):
    from PIL import Image

    root = str(tmp_path / "results")
    make_store(root, str(tmp_path / "grids"))
    text = build_report(root, EXPERIMENT, n_boot=500)
    assert "<script" not in text
    page = tmp_path / "report.html"
    page.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    url = page.as_uri()

    dom = _chromium(tmp_path, "--dump-dom", url)
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert match, f"no probe output; chromium rc={dom.returncode} stderr tail:\n{dom.stderr[-2000:]}"
    images = {im["id"]: im for im in json.loads(html.unescape(match.group(1)))}

    embedded = dict(re.findall(r'<img id="([^"]+)"[^>]*src="data:image/png;base64,([^"]+)"', text))
    assert len(embedded) == 9 and set(images) == set(embedded)
    for image_id, b64 in embedded.items():
        decoded = Image.open(io.BytesIO(base64.b64decode(b64)))
        im = images[image_id]
        assert im["complete"] and im["naturalWidth"] > 0, f"{image_id} did not decode in the browser: {im}"
        assert (im["naturalWidth"], im["naturalHeight"]) == decoded.size, image_id
        assert im["w"] > 50 and im["h"] > 50, f"{image_id} laid out too small: {im}"

    shot_path = tmp_path / "shot.png"
    shot = _chromium(tmp_path, f"--screenshot={shot_path}", url)
    assert shot_path.exists(), f"no screenshot; rc={shot.returncode} stderr tail:\n{shot.stderr[-2000:]}"
    pixels = np.asarray(Image.open(shot_path).convert("RGB"), dtype=np.int16)
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    checked = []
    for image_id, im in images.items():
        x0, y0 = int(im["x"]) + 3, int(im["y"]) + 3
        x1, y1 = int(im["x"] + im["w"]) - 3, int(im["y"] + im["h"]) - 3
        if y1 > HEIGHT or x1 > WIDTH:
            continue  # below the captured viewport
        region = pixels[y0:y1, x0:x1]
        non_white = float((region.min(axis=2) < 235).mean())
        assert non_white > 0.03 and region.std() > 15, f"{image_id} looks blank ({non_white:.3f} non-white)"
        checked.append(image_id)
    # every plot is on screen (the sample grids at the bottom may fall below it)
    assert {"plot-fid-curves", "plot-effect-0", "plot-effect-1", "plot-importance", "plot-interaction",
            "plot-pareto"} <= set(checked)
    # ... and the page around them is not: the right margin is white
    assert (pixels[:, WIDTH - 40:WIDTH - 5].min(axis=2) > 235).mean() > 0.99
