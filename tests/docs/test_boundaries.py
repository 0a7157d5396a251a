"""docs/boundaries.md: every name in a row of its table extends a line the same way, and
rconv's functions take the names its second table says. The table is read from the page, so
a row changed there is tested as written."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest
import scipy.ndimage as sn
import scipy.signal as ss

import rconv
import rconv.ndimage as rn

PAGE = pathlib.Path(__file__).parents[2] / "docs" / "boundaries.md"
LINE = np.array([1.0, 2.0, 3.0, 4.0])  # a b c d
K = 9.0  # the constant k
R = 3  # samples added on each side


def _rows() -> list[dict]:
    """The first table's rows: the extension written out and each library's names."""
    rows = []
    for line in PAGE.read_text().splitlines():
        if "│" not in line:
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        ext, ndimage, pad, opencv, torch, signal = cells
        names = [re.findall(r"`'?([\w-]+)'?`", c) for c in cells[1:]]
        rows.append(
            dict(
                text=ext,
                ext=_expected(ext),
                ndimage=names[0],
                pad=names[1][:1],
                opencv=names[2][:1],
                torch=names[3][:1],
                signal=names[4],
                constant="k k k" in ext,
            )
        )
    return rows


def _expected(text: str) -> np.ndarray:
    """`c b a │ a b c d │ d c b` as numbers (a..d = 1..4, k = K)."""
    value = {"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0, "k": K}
    left, mid, right = re.search(r"`([^`]*)`", text).group(1).split("│")
    out = [value[t] for t in (left + mid + right).split()]
    assert len(out) == len(LINE) + 2 * R and np.array_equal(out[R:-R], LINE)
    return np.array(out)


ROWS = _rows()
IDS = [re.sub(r"\W+", "-", r["text"].split("(")[-1]).strip("-") for r in ROWS]


def test_the_page_has_the_five_extensions():
    assert len(ROWS) == 5
    assert all(r["ndimage"] and r["pad"] and r["opencv"] for r in ROWS)


def _by_taps(filt) -> np.ndarray:
    """The extension a filter sees: `filt(w)` correlates LINE with a 7-tap one-hot `w`
    centred on tap R, whose output i is the extended sample i + j - R."""
    out = []
    for j in range(2 * R + 1):
        w = np.zeros(2 * R + 1)
        w[j] = 1.0
        y = np.asarray(filt(w)).ravel()
        if j < R:
            out.append((0, y[0]))
        elif j > R:
            out.append((1, y[-1]))
    left = [v for side, v in out if side == 0]
    right = [v for side, v in out if side == 1]
    return np.array(left + list(LINE) + right)


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_np_pad(row):
    for name in row["pad"]:
        kw = {"constant_values": K} if name == "constant" else {}
        np.testing.assert_array_equal(np.pad(LINE, R, mode=name, **kw), row["ext"])


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_scipy_ndimage_and_rconv_ndimage(row):
    for name in row["ndimage"]:
        for lib in (sn, rn):
            got = _by_taps(lambda w, lib=lib, m=name: lib.correlate1d(LINE, w, mode=m, cval=K))
            np.testing.assert_array_equal(got, row["ext"], err_msg=f"{lib.__name__} {name}")


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_opencv(row):
    # OpenCV comes with the 'notebooks' extra (the README's test command installs it; the
    # oldest-dependency run does not)
    cv2 = pytest.importorskip("cv2", reason="install the 'notebooks' extra (OpenCV)")
    (name,) = row["opencv"]
    got = cv2.copyMakeBorder(LINE[None], 0, 0, R, R, getattr(cv2, name), value=K)
    np.testing.assert_array_equal(got[0], row["ext"])


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_scipy_signal_and_rconv_correlate2d(row):
    for name in row["signal"]:
        for f in (ss.correlate2d, rconv.correlate2d):
            got = _by_taps(lambda w, f=f, b=name: f(LINE[None], w[None], "same", b, K))
            np.testing.assert_array_equal(got, row["ext"], err_msg=f"{f.__module__} {name}")


@pytest.mark.parametrize("row", ROWS, ids=IDS)
def test_rconv_conv2d_padding_mode(row):
    """conv2d takes torch's names, and 'symmetric' for the row torch lacks; 'zeros' is the
    constant row with k = 0."""
    names = row["torch"] or ["symmetric"]
    want = row["ext"] if not row["constant"] else np.pad(LINE, R)
    x = LINE[None, None, None].astype(np.float32)
    for name in names:

        def filt(w, name=name):
            k = w[None, None, None].astype(np.float32)
            return rconv.conv2d(x, k, padding=(0, R), padding_mode=name)

        np.testing.assert_array_equal(_by_taps(filt), want.astype(np.float32), err_msg=name)


@pytest.mark.parametrize("row", [r for r in ROWS if r["torch"]], ids=lambda r: r["torch"][0])
def test_torch(row):
    torch = pytest.importorskip("torch", reason="torch parity: torch not installed")
    (name,) = row["torch"]
    t = torch.from_numpy(LINE[None, None])
    if name == "zeros":
        got = torch.nn.functional.pad(t, (R, R), mode="constant", value=0.0)
        want = np.pad(LINE, R)
    else:
        got = torch.nn.functional.pad(t, (R, R), mode=name)
        want = row["ext"]
    np.testing.assert_array_equal(got.numpy()[0, 0], want)


def test_rconv_takes_only_its_own_names():
    """A name from another library's column is refused, not reinterpreted."""
    with pytest.raises(RuntimeError, match="boundary mode not supported"):
        rn.correlate1d(LINE, [1.0, 1.0], mode="symmetric")
    with pytest.raises(ValueError, match="boundary"):
        rconv.correlate2d(LINE[None], np.ones((1, 2)), "same", "reflect")
    with pytest.raises(ValueError, match="padding_mode"):
        rconv.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), padding=1, padding_mode="edge")
