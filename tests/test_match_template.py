"""match_template against cv2.matchTemplate and a float64 loop over placements; peaks on known shifts."""

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import xcorr

CV2_METHODS = {
    "sqdiff": cv2.TM_SQDIFF,
    "sqdiff_normed": cv2.TM_SQDIFF_NORMED,
    "ccorr": cv2.TM_CCORR,
    "ccorr_normed": cv2.TM_CCORR_NORMED,
    "ccoeff": cv2.TM_CCOEFF,
    "ccoeff_normed": cv2.TM_CCOEFF_NORMED,
}


def brute_force(image, template, method, mask=None, image_mask=None):
    """Every placement's score by the formulas, in float64: image (H, W, C), template (h, w, C)."""
    (height, width, _), (h, w, _) = image.shape, template.shape
    mask = np.ones((h, w)) if mask is None else mask
    image_mask = np.ones((height, width)) if image_mask is None else (image_mask != 0) * 1.0
    out = np.zeros((height - h + 1, width - w + 1))
    t = template.astype(np.float64)
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            window = image[r : r + h, c : c + w].astype(np.float64)
            weights = (mask * image_mask[r : r + h, c : c + w])[:, :, None]
            w2 = weights**2
            if method.startswith("ccoeff"):
                total = weights.sum()
                t_mean = (weights * t).sum((0, 1)) / total if total else 0
                i_mean = (weights * window).sum((0, 1)) / total if total else 0
                tc, ic = t - t_mean, window - i_mean
            else:
                tc, ic = t, window
            numerator = (w2 * (t - window) ** 2).sum() if method.startswith("sqdiff") else (w2 * tc * ic).sum()
            t_var, i_var = (w2 * tc**2).sum(), (w2 * ic**2).sum()
            flat = t_var <= 1e-12 * (w2 * t**2).sum() or i_var <= 1e-12 * (w2 * window**2).sum()
            norm = 0.0 if flat else np.sqrt(t_var * i_var)  # a flat template or window: its variance is rounding
            if method.endswith("normed"):
                flat = 1.0 if method == "sqdiff_normed" else 0.0
                out[r, c] = np.clip(numerator / norm, -1, 1) if norm > 0 else flat
            else:
                out[r, c] = numerator
    return out


def _photo(rng, dtype, channels, shape=(48, 61)):
    image = rng.random((*shape, channels)) * 255
    return image.astype(dtype) if dtype == np.uint8 else image.astype(np.float32)


@pytest.mark.parametrize("method", CV2_METHODS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("masking", [None, "binary", "weights"])
def test_equals_opencv(method, dtype, channels, masking):
    rng = np.random.default_rng(hash((method, channels, str(masking))) % 2**32)
    image = _photo(rng, dtype, channels)
    template = image[9:24, 17:28].copy()
    template[::3] = _photo(rng, dtype, channels, (15, 11))[::3]  # no perfect match
    mask = None
    if masking == "binary":
        mask = (rng.random((15, 11)) > 0.3).astype(np.float32)
    elif masking == "weights":
        mask = rng.random((15, 11)).astype(np.float32)
    cv_image, cv_template = (image[..., 0], template[..., 0]) if channels == 1 else (image, template)
    cv_mask = None if mask is None or channels == 1 else np.repeat(mask[:, :, None], 3, 2)
    expected = cv2.matchTemplate(cv_image, cv_template, CV2_METHODS[method], mask=mask if channels == 1 else cv_mask)
    got = xcorr.match_template(
        cv_image, cv_template, method=method, mask=mask, channel_axis=None if channels == 1 else -1
    )
    assert got.dtype == np.float32 and got.shape == expected.shape
    tolerance = 1e-4 if method.endswith("normed") else 1e-5 * np.ptp(expected)
    np.testing.assert_allclose(got, expected, atol=tolerance, rtol=0)
    reference = brute_force(image, template, method, mask)
    np.testing.assert_allclose(got, reference, atol=tolerance, rtol=0)


@pytest.mark.parametrize("method", CV2_METHODS)
def test_image_mask_equals_the_float64_loop(method):
    rng = np.random.default_rng(7)
    image, template = rng.random((21, 26, 2)), rng.random((5, 6, 2))
    mask = (rng.random((5, 6)) > 0.2) * 1.0
    image_mask = rng.random((21, 26)) > 0.3
    image_mask[:8, :9] = False  # placements over almost nothing: normed scores fall back to the flat value
    got = xcorr.match_template(image, template, method=method, mask=mask, image_mask=image_mask, channel_axis=-1)
    expected = brute_force(image, template, method, mask, image_mask)
    np.testing.assert_allclose(got, expected, atol=1e-10 * max(1, np.ptp(expected)), rtol=0)


@pytest.mark.parametrize("method", ["sqdiff", "ccorr_normed", "ccoeff_normed"])
def test_many_templates_equal_one_at_a_time(method):
    rng = np.random.default_rng(11)
    image = rng.integers(0, 256, (70, 90), dtype=np.uint8)
    templates = np.stack([image[r : r + 12, 2 * r : 2 * r + 9] for r in range(5)])
    together = xcorr.match_template(image, templates, method=method)
    assert together.shape == (5, 59, 82)
    for template, scores in zip(templates, together, strict=True):
        np.testing.assert_allclose(scores, xcorr.match_template(image, template, method=method), atol=1e-6, rtol=0)


@pytest.mark.parametrize("mode", ["same", "full"])
def test_same_and_full_match_the_zero_extended_image(mode):
    rng = np.random.default_rng(5)
    image, template = rng.random((30, 40)), rng.random((7, 4))
    top, left = (3, 1) if mode == "same" else (6, 3)
    bottom, right = (3, 2) if mode == "same" else (6, 3)
    padded = np.pad(image, ((top, bottom), (left, right)))
    got = xcorr.match_template(image, template, mode=mode)
    np.testing.assert_allclose(got, xcorr.match_template(padded, template), atol=1e-12)
    assert got.shape == ((30, 40) if mode == "same" else (36, 43))


def test_flat_windows_and_flat_templates_take_opencvs_values():
    image = np.zeros((40, 50), np.float32)
    image[20:, 25:] = np.random.default_rng(1).random((20, 25))
    template = image[22:30, 30:37].copy()
    for method in ("ccorr_normed", "ccoeff_normed", "sqdiff_normed"):
        got = xcorr.match_template(image, template, method=method)
        expected = cv2.matchTemplate(image, template, CV2_METHODS[method])
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, expected, atol=1e-4)
    flat = xcorr.match_template(image, np.ones((5, 5), np.float32))
    assert (flat == 0).all()


def test_normalised_scores_keep_their_digits_on_a_bright_image():
    rng = np.random.default_rng(2)
    image = 1e4 + rng.random((60, 70))  # a window's variance ~1e-1 next to values ~1e8 squared
    template = image[10:26, 20:36] + 0.01 * rng.random((16, 16))
    got = xcorr.match_template(image.astype(np.float32), template.astype(np.float32))
    assert got.min() >= -1 and got.max() <= 1
    expected = brute_force(image.astype(np.float32)[..., None], template.astype(np.float32)[..., None], "ccoeff_normed")
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("method", CV2_METHODS)
def test_torch_inputs_are_differentiable_and_agree(method):
    rng = np.random.default_rng(3)
    image, template = rng.random((14, 17)), rng.random((4, 5))
    mask = rng.random((4, 5))
    x = torch.tensor(image, requires_grad=True)
    t = torch.tensor(template, requires_grad=True)
    scores = xcorr.match_template(x, t, method=method, mask=mask)
    assert isinstance(scores, torch.Tensor) and scores.dtype == torch.float64
    np.testing.assert_allclose(
        scores.detach().numpy(), xcorr.match_template(image, template, method=method, mask=mask), atol=1e-12
    )
    assert torch.autograd.gradcheck(lambda a, b: xcorr.match_template(a, b, method=method, mask=mask), (x, t))


@given(
    size=st.tuples(st.integers(6, 20), st.integers(6, 20)),
    template=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    method=st.sampled_from(sorted(CV2_METHODS)),
    seed=st.integers(0, 2**16),
)
def test_property_every_method_equals_the_loop(size, template, method, seed):
    rng = np.random.default_rng(seed)
    image = rng.random(size) * 4 - 2
    t = rng.random(template) * 4 - 2
    mask = rng.random(template) + 0.1
    got = xcorr.match_template(image, t, method=method, mask=mask)
    expected = brute_force(image[..., None], t[..., None], method, mask)
    np.testing.assert_allclose(got, expected, atol=1e-9 * max(1, np.abs(expected).max()), rtol=0)


def test_peaks_find_a_subpixel_shift():
    yy, xx = np.mgrid[0:120, 0:160]

    def blob(cy, cx):
        return np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 32.0)

    image = blob(50.3, 70.7) + 0.6 * blob(90.0, 30.0)
    template = blob(60.0, 80.0)[48:73, 68:93]  # centred on (12, 12)
    found = xcorr.peaks(xcorr.match_template(image, template), count=2, min_distance=10)
    best = found[np.argmin(np.abs(found[:, 1] - 38.3))]
    assert abs(best[1] - 38.3) < 0.1 and abs(best[2] - 58.7) < 0.1


def test_peaks_rank_space_and_take_the_smallest_for_sqdiff():
    scores = np.zeros((2, 10, 12))
    scores[0, 2, 3], scores[0, 2, 4], scores[0, 7, 9] = 0.9, 0.8, 0.5
    scores[1, 5, 5] = -1
    found = xcorr.peaks(scores, count=2, subpixel=False)
    assert found[:2, 1:].tolist() == [[2, 3, 0.9], [7, 9, 0.5]]
    assert xcorr.peaks(scores[1], smallest=True, subpixel=False).tolist() == [[0, 5, 5, -1]]
    assert xcorr.peaks(np.full((3, 3), np.nan)).shape == (0, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "TM_CCOEFF"}, "method must be one of"),
        ({"template": np.ones((3, 3, 2)), "channel_axis": -1}, "template has 2 channels but image has 3"),
        ({"mask": np.ones((2, 2))}, "mask has shape"),
        ({"image_mask": np.ones((3, 3))}, "image_mask has shape"),
        ({"template": np.ones((40, 3))}, "larger than"),
        ({"mask": np.full((3, 3), np.nan)}, "NaN"),
    ],
)
def test_errors_name_the_argument(kwargs, message):
    image = np.ones((20, 30, 3)) if kwargs.get("channel_axis") is not None else np.ones((20, 30))
    arguments = {"template": np.ones((3, 3)), **kwargs}
    with pytest.raises(ValueError, match=message):
        xcorr.match_template(image, **arguments)
