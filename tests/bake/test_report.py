"""Honest scoring: the warning when few generated frames show a face, and the portrait renders at yaw 0, +-30,
+-60 degrees that the report shows beside the photo."""

from pathlib import Path

import numpy as np
import pytest

from anchorsplat.bake.report import ReportData, render_report
from anchorsplat.bake.score import PORTRAIT_YAWS_DEG, PortraitScore, faces_warning, portrait_scores
from anchorsplat.gaussians.assets import asset_path

ROOT = Path(__file__).resolve().parents[2]


def test_faces_warning_below_half():
    assert faces_warning(5, 10) is None and faces_warning(10, 10) is None and faces_warning(0, 0) is None
    warning = faces_warning(4, 10)
    assert warning is not None and "4 of 10" in warning


def _data(**kwargs) -> ReportData:
    image = np.zeros((8, 8, 3), np.uint8)
    return ReportData("p.png", "preview", "proxy", [1.0, 0.5], [10, 10], 20.0, [("turn", 0, 0.4, 1.0)],
                      image[None], image[None], image, **kwargs)  # fmt: skip


def test_report_shows_the_warning_in_red_and_the_portraits():
    portraits = [PortraitScore(y, np.zeros((8, 8, 3), np.uint8), d) for y, d in [(0.0, 0.41), (30.0, 0.52),
                                                                                  (60.0, None)]]  # fmt: skip
    html = render_report(_data(portraits=portraits, warning=faces_warning(1, 10)))
    assert 'class="warning" style="color:#c00' in html and "1 of 10" in html
    assert "yaw +0" in html and "yaw +30" in html and "yaw +60" in html
    assert '#080">0.410' in html and '#a60">0.520' in html and "no face found" in html
    assert "Warning" not in render_report(_data(portraits=portraits))


@pytest.mark.skipif(not asset_path("sample.anchorsplat").is_file(), reason="no sample avatar")
def test_portrait_scores_of_the_sample_avatar():
    from anchorsplat.bake.photo import load_photo
    from anchorsplat.gaussians.io import load_avatar

    avatar = load_avatar(asset_path("sample.anchorsplat"))
    photo = load_photo(asset_path("sample", "astronaut.png"))
    scores = portrait_scores(avatar, photo, size=192, backend="torch")
    assert [s.yaw_deg for s in scores] == list(PORTRAIT_YAWS_DEG)
    assert all(s.image.shape == (192, 192, 3) for s in scores)
    front = scores[PORTRAIT_YAWS_DEG.index(0.0)]
    assert front.distance is not None and front.distance < 0.6  # the sample avatar is the astronaut
