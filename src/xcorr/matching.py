"""Template matching: OpenCV's six scores, with template masks, image masks and many templates at once.

Every score is a combination of window sums over the pixels a template placement covers. With ``W`` the weight of
a template pixel at one placement (the template mask ``M``, times the image mask ``B`` under it; 1 without
masks), ``T`` the template and ``I`` the image under it, summed over the window and the channels::

    sqdiff        sum W² (T - I)²                     ccorr         sum W² T I
    sqdiff_normed sqdiff / sqrt(sum W² T² sum W² I²)   ccorr_normed  ccorr / sqrt(sum W² T² sum W² I²)
    ccoeff        sum W² (T - t)(I - i), t and i the W-weighted means of T and I in the window, per channel
    ccoeff_normed ccoeff / sqrt(sum W² (T - t)² sum W² (I - i)²)

which is OpenCV's definition with a mask (``W = M``) and Padfield's masked normalised correlation (2012) with an
image mask. Each sum is a correlation of an image-side map (``B``, ``B I``, ``B I²``) with a template-side one
(``M``, ``M²``, ``M² T``, ...): the template-times-image term runs through the engine (:func:`correlate`, the
planner picking direct sums or the FFT) in the inputs' float dtype; the other sums are float64, as box sums of
integral images where no mask weighs the window (exact for 8- and 16-bit images), else through the engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from xcorr import arguments, scores
from xcorr.arguments import ArrayLike, Result
from xcorr.autograd import correlate

METHODS = ("sqdiff", "sqdiff_normed", "ccorr", "ccorr_normed", "ccoeff", "ccoeff_normed")
_STATS = torch.float64


def match_template(
    image: ArrayLike,
    template: ArrayLike,
    *,
    method: str = "ccoeff_normed",
    mask: ArrayLike | None = None,
    image_mask: ArrayLike | None = None,
    mode: str = "valid",
    channel_axis: int | None = None,
) -> Result:
    """Scores of ``template`` at every placement on ``image``, as ``cv2.matchTemplate``.

    Args:
        image: (H, W), or with ``channel_axis`` (H, W, C) / (C, H, W). Any real dtype (uint8, uint16, float32,
            float64, ...).
        template: (h, w), or (n, h, w) for n templates of one size sharing the image's work; with
            ``channel_axis``, the image's channel axis too (counted from the end: (h, w, C) or (n, h, w, C) for
            ``channel_axis=-1``).
        method: OpenCV's ``TM_*`` names in lower case: ``"sqdiff"``, ``"sqdiff_normed"``, ``"ccorr"``,
            ``"ccorr_normed"``, ``"ccoeff"``, ``"ccoeff_normed"`` (formulas in :mod:`xcorr.matching`). Normalised
            scores lie in [-1, 1] (``sqdiff_normed`` in [0, 1]); where a window or the template is flat (zero norm)
            ``ccorr_normed`` and ``ccoeff_normed`` are 0 and ``sqdiff_normed`` is 1, as OpenCV returns.
        mask: (h, w) weights of the template's pixels (OpenCV's ``mask``, shared by channels and templates).
        image_mask: (H, W) image pixels to use (nonzero) or ignore (0): each placement sums over the template
            pixels that fall on used ones (masked normalised correlation).
        mode: ``"valid"`` (H - h + 1, W - w + 1), OpenCV's size; ``"same"`` (H, W) or ``"full"`` (H + h - 1,
            W + w - 1), placed as :func:`xcorr.filter2d` places them, the image extended with zeros (scikit-image's
            ``pad_input``); with ``image_mask`` the pixels outside the image are ignored instead.
        channel_axis: the colour axis of ``image`` (scikit-image's convention); scores sum over channels, as
            OpenCV's do, ``ccoeff``'s means taken per channel.

    Returns:
        (Ho, Wo), or (n, Ho, Wo) for n templates: float32, float64 where an input is float64. NumPy when image
        and template are NumPy; torch (differentiable in image and template) when either is a tensor.

    Accuracy: the template-times-image sum is computed in the result's dtype (the engine's error, about
    ``taps * eps * sum |T| |I|``; for ``ccoeff`` on the image and template less their means, so a flat window on
    a bright image loses no digits to the brightness); every other sum in float64. Normalised scores are
    clipped to their range.

    Example:
        >>> import numpy as np
        >>> image = np.zeros((6, 7)); image[2:4, 3:5] = [[1, 2], [3, 4]]
        >>> scores = match_template(image, np.array([[1.0, 2.0], [3.0, 4.0]]))
        >>> np.unravel_index(scores.argmax(), scores.shape), round(float(scores.max()), 6)
        ((np.int64(2), np.int64(3)), 1.0)
    """
    method = arguments.one_of(method, METHODS, "method")
    mode = arguments.check_mode(mode)
    inputs = _Inputs.of(image, template, mask, image_mask, channel_axis)
    scores = _scores(inputs, method, mode)
    scores = scores if inputs.many else scores[0]
    return scores.detach().cpu().numpy() if inputs.numpy else scores


@dataclass(frozen=True)
class _Inputs:
    """The arguments as tensors: image (C, H, W), templates (n, C, h, w), masks (h, w) / (H, W) or None."""

    image: Tensor
    templates: Tensor
    mask: Tensor | None
    image_mask: Tensor | None
    many: bool
    numpy: bool
    integers: bool

    @staticmethod
    def of(
        image: ArrayLike,
        template: ArrayLike,
        mask: ArrayLike | None,
        image_mask: ArrayLike | None,
        channel_axis: int | None,
    ) -> _Inputs:
        integers = not _is_float(image) and not _is_float(template)
        x, t, numpy = arguments.to_common_tensors(image, template, ("image", "template"))
        if x.dtype not in (torch.float32, torch.float64):  # float16/bfloat16: sums of squares overflow them
            x, t = x.float(), t.float()
        axis = arguments.check_channel_axis(channel_axis, x.ndim)
        if axis is None:
            arguments.check_ndim(x, "image", (2,), "(H, W); pass channel_axis for a colour image")
            arguments.check_ndim(t, "template", (2, 3), "(h, w) or (n, h, w)")
            x, t = x[None], t.unsqueeze(-3)
        else:
            arguments.check_ndim(x, "image", (3,), "(H, W, C) or (C, H, W) with channel_axis")
            arguments.check_ndim(t, "template", (3, 4), "the image's layout, or n of them stacked first")
            x, t = x.movedim(axis, 0), t.movedim(axis - 3, -3)
        many = t.ndim == 4
        t = t if many else t[None]
        if t.shape[1] != x.shape[0]:
            raise ValueError(f"template has {t.shape[1]} channels but image has {x.shape[0]}; pass equal channels")
        arguments.check_not_empty(x.shape[-2:], "image")
        arguments.check_not_empty(t.shape[-2:], "template")
        if t.shape[0] == 0:
            raise ValueError("template holds no templates (n = 0); pass at least one")
        m = _mask(mask, "mask", tuple(t.shape[-2:]), x)
        b = _mask(image_mask, "image_mask", tuple(x.shape[-2:]), x)
        b = None if b is None else (b != 0).to(x.dtype)
        return _Inputs(x, t, m, b, many, numpy, integers)


def _is_float(value: ArrayLike) -> bool:
    return value.is_floating_point() if isinstance(value, Tensor) else np.asarray(value).dtype.kind not in "biu"


def _mask(value: ArrayLike | None, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor | None:
    if value is None:
        return None
    m, _ = arguments.to_tensor(value, name, like.dtype)
    if tuple(m.shape) != shape:
        raise ValueError(f"{name} has shape {tuple(m.shape)} but must be {shape}, the size it weighs")
    if not bool(torch.isfinite(m).all()):
        raise ValueError(f"{name} holds NaN or Inf; pass finite weights")
    return m.to(like.device)


def _scores(inputs: _Inputs, method: str, mode: str) -> Tensor:
    x, t = inputs.image, inputs.templates
    (h, w), (kh, kw) = x.shape[-2:], t.shape[-2:]
    if mode == "valid":
        arguments.fits_or_raise((h, w), (kh, kw), "use mode='same' or a smaller template")
    padding = arguments.mode_padding(mode, (kh, kw))
    b = inputs.image_mask
    if any(padding):
        x = F.pad(x, (padding[2], padding[3], padding[0], padding[1]))
        b = None if b is None else F.pad(b, (padding[2], padding[3], padding[0], padding[1]))
    if method.startswith("ccoeff"):  # unchanged by constants added to image or template: subtract their means
        x = x - _typical(inputs.image, None, inputs.integers).to(x.dtype)
        t = t - _typical(t, inputs.mask, inputs.integers).to(t.dtype)
    autograd = torch.is_grad_enabled() and (x.requires_grad or t.requires_grad)
    compiled = not autograd and x.device.type == "cpu" and b is None  # the template's sums are constants
    sums = _WindowSums(x, t, inputs.mask, b, compiled)
    if not compiled:
        return _combined(method, sums).to(x.dtype)
    out = torch.empty(sums.cross.shape, dtype=x.dtype)
    image = (sums.image_sums[0].numpy(), sums.image_weighted[0].numpy(), sums.image_squares[0].numpy())
    template = (sums.template_sums[..., 0, 0].numpy(), sums.template_weighted[..., 0, 0].numpy())
    template_squares = sums.template_squares[..., 0, 0].numpy()
    weights = (float(sums.weights), float(sums.weights_squared))
    scores.combine(method, sums.cross.numpy(), image, (*template, template_squares), weights, out.numpy())
    return out


def _combined(method: str, sums: _WindowSums) -> Tensor:
    """:func:`xcorr.scores.combine`'s formulas as torch operations, differentiable."""
    cross = sums.cross.to(_STATS)
    if method == "ccorr":
        return cross
    tt, ii = sums.template_squares.sum(1), sums.image_squares.sum(1)
    if method == "sqdiff":
        return (tt - 2 * cross + ii).clamp_min(0)
    if method == "sqdiff_normed":
        return _normed(tt - 2 * cross + ii, tt * ii, flat=1.0).clamp(0, 1)
    if method == "ccorr_normed":
        return _normed(cross, tt * ii, flat=0.0)
    t_mean, i_mean = sums.template_sums / sums.weights, sums.image_sums / sums.weights
    t_mean, i_mean = _zero_where_empty(t_mean, sums.weights), _zero_where_empty(i_mean, sums.weights)
    a2 = sums.weights_squared
    cross = cross + (t_mean * i_mean * a2 - i_mean * sums.template_weighted - t_mean * sums.image_weighted).sum(1)
    if method == "ccoeff":
        return cross
    t_var = (sums.template_squares - 2 * t_mean * sums.template_weighted + t_mean**2 * a2).sum(1)
    i_var = (sums.image_squares - 2 * i_mean * sums.image_weighted + i_mean**2 * a2).sum(1)
    t_var = torch.where(t_var <= scores.FLAT * sums.template_squares.sum(1), 0.0, t_var)  # rounding of a flat one
    i_var = torch.where(i_var <= scores.FLAT * sums.image_squares.sum(1), 0.0, i_var)
    return _normed(cross, t_var.clamp_min(0) * i_var.clamp_min(0), flat=0.0)


def _typical(x: Tensor, mask: Tensor | None, integers: bool) -> Tensor:
    """A per-channel value near the data's: its (mask-weighted) mean, detached (any constant keeps ccoeff), rounded
    for integer data (which then stay integers, and their window sums exact)."""
    x = x.detach()
    if mask is None or not bool(mask.sum() != 0):
        mean = x.mean((-2, -1), keepdim=True, dtype=_STATS)
    else:
        m = mask.detach().to(_STATS)
        mean = (x.to(_STATS) * m).sum((-2, -1), keepdim=True) / m.sum()
    return mean.round() if integers else mean


def _zero_where_empty(mean: Tensor, weights: Tensor) -> Tensor:
    return torch.where(weights != 0, mean, torch.zeros((), dtype=mean.dtype))


def _normed(numerator: Tensor, squared_norms: Tensor, *, flat: float) -> Tensor:
    """``numerator / sqrt(squared_norms)`` by OpenCV's rule: within 1.125x of the norm clipped to +-1, beyond
    it (a flat window, where the norm is zero and the numerator rounding) ``flat``."""
    norm = squared_norms.clamp_min(0).sqrt()
    ratio = numerator / torch.where(norm > 0, norm, torch.ones((), dtype=norm.dtype))
    inside = numerator.abs() < norm
    near = numerator.abs() < 1.125 * norm
    return torch.where(
        inside, ratio.clamp(-1, 1), torch.where(near, torch.sign(numerator), torch.full_like(ratio, flat))
    )


class _WindowSums:
    """Each sum of :mod:`xcorr.matching`'s formulas at every placement, per channel (n, C, Ho, Wo) float64; sums
    with no image term are (n, C, 1, 1) constants without an image mask, with no template term (1, C, Ho, Wo).
    ``cross`` is summed over channels already, (n, Ho, Wo) in the image's dtype.

    ``weights`` sum W, ``weights_squared`` sum W², ``template_sums`` sum W T, ``template_weighted`` sum W² T,
    ``template_squares`` sum W² T², ``image_sums`` sum W I, ``image_weighted`` sum W² I, ``image_squares``
    sum W² I², ``cross`` sum W² T I.
    """

    def __init__(self, x: Tensor, t: Tensor, mask: Tensor | None, image_mask: Tensor | None, compiled: bool) -> None:
        size = tuple(t.shape[-2:])
        m = torch.ones(size, dtype=x.dtype, device=x.device) if mask is None else mask
        m2 = m * m
        b = image_mask
        self.cross = correlate(x[None] if b is None else (x * b)[None], m2 * t)[0]
        ts = t.to(_STATS)
        ms, m2s = m.to(_STATS), m2.to(_STATS)
        if b is None:
            ones = torch.ones((1, 1, 1, 1), dtype=_STATS, device=x.device)
            self.weights, self.weights_squared = ms.sum() * ones, m2s.sum() * ones
            self.template_sums = (ms * ts).sum((-2, -1), keepdim=True)
            self.template_weighted = (m2s * ts).sum((-2, -1), keepdim=True)
            self.template_squares = (m2s * ts * ts).sum((-2, -1), keepdim=True)
            if mask is None:
                sums, squares = _box_sums(x, size, compiled)
                self.image_sums = self.image_weighted = sums[None]
                self.image_squares = squares[None]
            else:
                self.image_sums, self.image_weighted, self.image_squares = _weighted_sums(x.to(_STATS), ms, m2s)
            return
        bs = b.to(_STATS)[None, None]
        template_side = torch.cat([ms[None], m2s[None], (ms * ts).flatten(0, 1), (m2s * ts).flatten(0, 1)])
        template_side = torch.cat([template_side, (m2s * ts * ts).flatten(0, 1)])
        under_mask = correlate(bs, template_side[:, None])[0]  # (2 + 3 n C, Ho, Wo)
        n, channels = t.shape[:2]
        per_template = under_mask[2:].unflatten(0, (3, n, channels))
        self.weights, self.weights_squared = under_mask[0][None, None], under_mask[1][None, None]
        self.template_sums, self.template_weighted, self.template_squares = per_template.unbind(0)
        self.image_sums, self.image_weighted, self.image_squares = _weighted_sums(x.to(_STATS) * bs[0], ms, m2s)


def _weighted_sums(x: Tensor, m: Tensor, m2: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """sum W I, sum W² I, sum W² I² per channel of ``x`` (C, H, W) (already times any image mask), with the
    template weights ``m`` and their squares ``m2`` (h, w): each (1, C, Ho, Wo). Two correlations for a 0/1 mask
    (its square is itself), three for other weights."""
    channels = x.shape[0]
    maps = torch.cat([x, x * x])[:, None]  # (2C, 1, H, W); (b I)² = b I² for a 0/1 image mask b
    if torch.equal(m, m2):
        sums = correlate(maps, m[None, None])[:, 0]  # (2C, Ho, Wo)
        return sums[None, :channels], sums[None, :channels], sums[None, channels:]
    sums = correlate(maps, torch.stack([m, m2])[:, None])  # (2C, 2, Ho, Wo)
    return sums[:channels, 0][None], sums[:channels, 1][None], sums[channels:, 1][None]


def _box_sums(x: Tensor, size: tuple[int, ...], compiled: bool) -> tuple[Tensor, Tensor]:
    """Sums of every (h, w) window of ``x`` (C, H, W) and of its square, float64 (C, H - h + 1, W - w + 1) each:
    :func:`xcorr.scores.box_moments` (``compiled``; exact for 8- and 16-bit images), or from integral images
    (exact for integers below 2**53 in total, else erring by about ``eps * sum |x|`` over the rectangle from the
    image's corner, small for data centred on its mean as ccoeff passes it)."""
    kh, kw = size
    if compiled:
        sums, squares = scores.box_moments(x.detach().cpu().numpy(), (kh, kw))
        return torch.from_numpy(sums).to(x.device), torch.from_numpy(squares).to(x.device)

    x = x.to(_STATS)

    def box(v: Tensor) -> Tensor:
        integral = F.pad(v.cumsum(-2).cumsum(-1), (1, 0, 1, 0))
        return integral[:, kh:, kw:] - integral[:, :-kh, kw:] - integral[:, kh:, :-kw] + integral[:, :-kh, :-kw]

    return box(x), box(x * x)
