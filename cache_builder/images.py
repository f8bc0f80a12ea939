"""Seeded procedural frames, distortions at known levels and tiny CNN weights: the image
fixture's recipe.

Every clip is one content at one distortion level; its frames are that content shifted by a
pixel per frame (and, for noise, a fresh noise draw), so the target is equal within a clip.
The CNNs share one fixed bank of 3x3 kernels (edges and Laplacians, so blur, noise and blocks
each move some channel); only the last layer is fitted to the target, by least squares on
features computed here with the same preprocessing the timeline describes. Everything is
elementwise float64 on numpy's seeded ``Generator``, and fitted numbers keep 7 significant
digits, so BLAS and LAPACK differences cannot reach the bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from model_bisect.catalogue import Direction

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGE_SEEDS",
    "PIXEL_SCALE",
    "SIZE",
    "Cnn",
    "Distortion",
    "FrameSet",
    "ImageFixture",
    "build_images",
    "preprocess",
]

SIZE = 32
PIXEL_SCALE = 1.0 / 255.0  # 0.00392156862745098 in the timeline files
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SEEDS: Mapping[str, int] = {
    "content": 20_261_201,
    "noise": 20_261_202,
    "timeline": 20_261_203,
}

_NR_CONTENTS = 4
_NR_FRAMES = 3
_FR_CONTENTS = 2
_FR_FRAMES = 2
_LEVELS = (1, 2, 3)
_MOS_PRISTINE = 4.6
_NR_MODELS = 6
_NR_FIRST_BAD = 4  # the deliberate regression: models 4 and 5 lost the sign of one weight
_WEIGHT_SPREAD = 0.02
_SIGNIFICANT_DIGITS = 7

UInt8Array = npt.NDArray[np.uint8]
Float64Array = npt.NDArray[np.float64]


class Distortion(StrEnum):
    PRISTINE = "pristine"
    NOISE = "noise"
    BLUR = "blur"
    BLOCKS = "blocks"


# MOS lost per level, per distortion: a target derived from the levels alone.
_MOS_PER_LEVEL: Mapping[Distortion, float] = {
    Distortion.NOISE: 1.2,
    Distortion.BLUR: 1.0,
    Distortion.BLOCKS: 1.1,
}
_NOISE_SD = (0.0, 8.0, 18.0, 34.0)  # per level, on the 0..255 scale
_BLOCK = (1, 2, 4, 8)  # block side per level


@dataclass(frozen=True, eq=False)
class FrameSet:
    """One tensor cache: tensor columns ``[N, C, SIZE, SIZE]`` uint8, the target, clip ids."""

    tensors: Mapping[str, UInt8Array]
    mos: Float64Array
    clip: tuple[str, ...]
    distortion: tuple[str, ...]

    @property
    def rows(self) -> int:
        return int(self.mos.shape[0])


@dataclass(frozen=True, eq=False)
class Cnn:
    """Conv (kernels ``[K, C, 3, 3]``) -> Relu -> GlobalAveragePool -> Flatten -> Gemm (K -> 1).

    A full-reference model takes the difference ``dist - ref`` first; ``batch`` 0 is a
    dynamic batch axis, 1 a batch fixed at one with a ``[1]`` output (as LPIPS exports)."""

    name: str
    kernels: npt.NDArray[np.float32]
    kernel_bias: npt.NDArray[np.float32]
    weights: npt.NDArray[np.float32]
    bias: np.float32
    full_reference: bool
    direction: Direction = Direction.HIGHER_IS_BETTER
    batch: int = 0


@dataclass(frozen=True, eq=False)
class ImageFixture:
    nr: FrameSet
    fr: FrameSet
    nr_models: tuple[Cnn, ...]
    fr_models: tuple[Cnn, ...]
    seeds: Mapping[str, int]


def build_images(seeds: Mapping[str, int] = IMAGE_SEEDS) -> ImageFixture:
    """The image fixture from its seeds alone."""
    content_rng = np.random.default_rng(seeds["content"])
    noise_rng = np.random.default_rng(seeds["noise"])
    nr = _frame_set(content_rng, noise_rng, _NR_CONTENTS, _NR_FRAMES, channels=1, pair=False)
    fr = _frame_set(content_rng, noise_rng, _FR_CONTENTS, _FR_FRAMES, channels=3, pair=True)

    kernels, kernel_bias = _kernel_bank(1, _NR_BANK)
    grey = preprocess(nr.tensors["frame"], (0.0,), (1.0,))
    good = _fit(_cnn_features(grey, kernels, kernel_bias), nr.mos)
    timeline_rng = np.random.default_rng(seeds["timeline"])
    nr_models = []
    for index in range(_NR_MODELS):
        weights, bias = _perturb(good, timeline_rng)
        if index >= _NR_FIRST_BAD:
            weights = weights.copy()
            weights[_dominant(good[0])] *= -1.0  # a sign lost in a refactor
        nr_models.append(Cnn(f"nr_{index:02d}", kernels, kernel_bias, weights, bias, False))

    fr_kernels, fr_bias = _kernel_bank(3, _FR_BANK)
    difference = preprocess(fr.tensors["dist"], IMAGENET_MEAN, IMAGENET_STD) - preprocess(
        fr.tensors["ref"], IMAGENET_MEAN, IMAGENET_STD
    )
    features = _cnn_features(difference, fr_kernels, fr_bias)
    quality = _fit(features, fr.mos)
    distance = _fit(features, _MOS_PRISTINE - fr.mos)  # lower is better
    fr_models = []
    for index in range(2):
        weights, bias = _perturb(quality, timeline_rng)
        fr_models.append(Cnn(f"fr_{index:02d}", fr_kernels, fr_bias, weights, bias, True))
    weights, bias = _perturb(distance, timeline_rng)
    fr_models.append(
        Cnn("fr_02", fr_kernels, fr_bias, weights, bias, True, Direction.LOWER_IS_BETTER, batch=1)
    )
    return ImageFixture(nr, fr, tuple(nr_models), tuple(fr_models), dict(seeds))


def preprocess(
    pixels: UInt8Array, mean: tuple[float, ...], std: tuple[float, ...]
) -> npt.NDArray[np.float32]:
    """What the timeline asks the evaluator for: ``(pixels * scale - mean) / std`` per channel,
    in float32."""
    x = pixels.astype(np.float32) * np.float32(PIXEL_SCALE)
    channels = pixels.shape[1]
    m = np.array(mean * channels if len(mean) == 1 else mean, dtype=np.float32)
    s = np.array(std * channels if len(std) == 1 else std, dtype=np.float32)
    return ((x - m.reshape(1, -1, 1, 1)) / s.reshape(1, -1, 1, 1)).astype(np.float32)


def _frame_set(
    content_rng: np.random.Generator,
    noise_rng: np.random.Generator,
    contents: int,
    frames: int,
    channels: int,
    pair: bool,
) -> FrameSet:
    cells = [(Distortion.PRISTINE, 0)] + [
        (kind, level) for kind in _MOS_PER_LEVEL for level in _LEVELS
    ]
    refs, dists, mos, clip, distortion = [], [], [], [], []
    for content in range(contents):
        base = _content(content_rng, channels)
        for kind, level in cells:
            score = _MOS_PRISTINE - _MOS_PER_LEVEL.get(kind, 0.0) * level
            for frame in range(frames):
                clean = np.roll(base, frame, axis=2)
                refs.append(_quantise(clean))
                dists.append(_quantise(_distort(clean, kind, level, noise_rng)))
                mos.append(score)
                clip.append(f"c{content}-{kind.value}-{level}")
                distortion.append(kind.value)
    tensors = (
        {"ref": np.stack(refs), "dist": np.stack(dists)} if pair else {"frame": np.stack(dists)}
    )
    return FrameSet(tensors, np.array(mos, dtype=np.float64), tuple(clip), tuple(distortion))


def _content(rng: np.random.Generator, channels: int) -> Float64Array:
    """A smooth gradient, a few flat rectangles and a fine texture, per channel, 0..255."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) / (SIZE - 1)
    image = np.empty((channels, SIZE, SIZE))
    for c in range(channels):
        a, b, base = rng.uniform(-60.0, 60.0), rng.uniform(-60.0, 60.0), rng.uniform(90.0, 160.0)
        plane = base + a * x + b * y
        for _ in range(3):
            top, left = rng.integers(0, SIZE - 8, 2)
            high, wide = rng.integers(6, 14, 2)
            plane[top : top + high, left : left + wide] += rng.uniform(-70.0, 70.0)
        plane += 12.0 * rng.uniform(-1.0, 1.0, (SIZE, SIZE))  # fine texture blur removes
        image[c] = plane
    return np.clip(image, 0.0, 255.0)


def _distort(
    clean: Float64Array, kind: Distortion, level: int, rng: np.random.Generator
) -> Float64Array:
    if kind is Distortion.NOISE:
        return clean + _NOISE_SD[level] * rng.standard_normal(clean.shape)
    if kind is Distortion.BLUR:
        blurred = clean
        for _ in range(level):
            blurred = _box3(blurred)
        return blurred
    if kind is Distortion.BLOCKS:
        side = _BLOCK[level]
        c, h, w = clean.shape
        blocks = clean.reshape(c, h // side, side, w // side, side).mean(axis=(2, 4))
        return np.repeat(np.repeat(blocks, side, axis=1), side, axis=2)
    return clean


def _box3(image: Float64Array) -> Float64Array:
    """A 3x3 box blur with edge replication, summed in a fixed order."""
    padded = np.pad(image, ((0, 0), (1, 1), (1, 1)), mode="edge")
    total = np.zeros_like(image)
    for dy in range(3):
        for dx in range(3):
            total = total + padded[:, dy : dy + SIZE, dx : dx + SIZE]
    return total / 9.0


def _quantise(image: Float64Array) -> UInt8Array:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


_LAPLACIAN = np.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_DX = np.array([[0.0, 0.0, 0.0], [-0.5, 0.0, 0.5], [0.0, 0.0, 0.0]])
_CENTRE = np.array([[0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
# No-reference: how much fine detail, at three strengths (noise adds it, blur and blocks
# remove it); full-reference: how large the difference is, and how much of it is detail.
_NR_BANK = ((_LAPLACIAN, (0.0, 0.1, 0.3)), (_DX, (0.0,)))
_FR_BANK = ((_CENTRE, (0.0,)), (_LAPLACIAN, (0.0,)), (_DX, (0.0,)))


def _kernel_bank(
    channels: int, bank: tuple[tuple[Float64Array, tuple[float, ...]], ...]
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Each kernel of ``bank`` with both signs and each of its thresholds (the Conv's bias),
    applied alike to every channel: ReLU of both signs measures the magnitude."""
    planes = [
        (sign * kernel, -threshold)
        for kernel, thresholds in bank
        for threshold in thresholds
        for sign in (1.0, -1.0)
    ]
    kernels = np.stack([np.stack([k / channels] * channels) for k, _ in planes])
    bias = np.array([b for _, b in planes])
    return kernels.astype(np.float32), bias.astype(np.float32)


def _cnn_features(
    x: npt.NDArray[np.float32], kernels: npt.NDArray[np.float32], bias: npt.NDArray[np.float32]
) -> Float64Array:
    """The Conv (valid, stride 1) -> Relu -> GlobalAveragePool part, in float64."""
    rows, out = x.shape[0], SIZE - 2
    values = x.astype(np.float64)
    features = np.empty((rows, kernels.shape[0]))
    for k in range(kernels.shape[0]):
        total = np.full((rows, out, out), float(bias[k]))
        for c in range(kernels.shape[1]):
            for dy in range(3):
                for dx in range(3):
                    weight = float(kernels[k, c, dy, dx])
                    if weight:
                        total = total + weight * values[:, c, dy : dy + out, dx : dx + out]
        features[:, k] = np.maximum(total, 0.0).mean(axis=(1, 2))
    return features


def _fit(features: Float64Array, target: Float64Array) -> tuple[Float64Array, float]:
    """Least-squares weights and bias, rounded to ``_SIGNIFICANT_DIGITS``."""
    design = np.column_stack([features, np.ones(features.shape[0])])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    rounded = [float(f"{value:.{_SIGNIFICANT_DIGITS}g}") for value in solution.tolist()]
    return np.array(rounded[:-1]), rounded[-1]


def _perturb(
    good: tuple[Float64Array, float], rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], np.float32]:
    """One checkpoint near ``good``: each weight moved by about 2%, elementwise."""
    weights, bias = good
    factors = 1.0 + _WEIGHT_SPREAD * rng.standard_normal(weights.shape[0])
    shift = _WEIGHT_SPREAD * float(rng.standard_normal())
    return (weights * factors).astype(np.float32), np.float32(bias + shift)


def _dominant(weights: Float64Array) -> int:
    """The weight whose sign matters most here: the largest in magnitude."""
    return int(np.argmax(np.abs(weights)))
