"""Reading IDAO PNGs and turning them into model-sized crops.

Every check names the file, because one bad image in 30,000 must be findable.
Crops are uint8 so that caches stay small; pedestal subtraction re-centres the
background on ``PEDESTAL`` instead of zero to stay in that range.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError

IMAGE_SIZE = 576
PEDESTAL = 100  # the camera's background level (mode of every real image)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"  # the last chunk, with its fixed CRC


def read_image(path: str | Path, rows: int | None = None) -> np.ndarray:
    """Read one 576x576 8-bit grayscale PNG; 3 identical channels are accepted.

    ``rows``: decode only the first ``rows`` rows. A PNG's rows decompress in order, so a centred crop and the
    rows above it (352 of 576) cost 0.58x of the whole image. The file must still end in its IEND chunk, else
    it is decoded in full, so a truncated file is refused either way.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read file ({e.strerror or e})") from e
    if not data:
        raise DataError(f"{path}: empty file (0 bytes); re-copy or delete it")
    if not data.startswith(_PNG_MAGIC):
        raise DataError(f"{path}: not a PNG file (wrong signature); re-copy or delete it")
    try:
        with Image.open(io.BytesIO(data)) as im:
            mode, size = im.mode, im.size
            if size == (IMAGE_SIZE, IMAGE_SIZE) and rows is not None and data.endswith(_PNG_END):
                _decode_only_first(im, rows)
            im.load()
            arr = np.asarray(im)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: corrupt or truncated PNG ({e}); re-copy or delete it") from e
    if mode in ("RGB", "RGBA"):
        rgb = arr[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise DataError(f"{path}: colour image with differing channels; expected 8-bit grayscale")
        arr = np.ascontiguousarray(rgb[..., 0])
    elif mode != "L":
        raise DataError(f"{path}: image mode {mode!r} (e.g. 16-bit); expected 8-bit grayscale (mode 'L')")
    if size != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{path}: image is {size[0]}x{size[1]}; expected {IMAGE_SIZE}x{IMAGE_SIZE}")
    return arr


def _decode_only_first(im: Image.Image, rows: int) -> None:
    """Make ``im.load()`` stop after ``rows`` rows: only for the common layout (one zlib tile, not interlaced);
    any other PNG is decoded in full."""
    if len(im.tile) == 1 and im.tile[0][0] == "zip" and not im.info.get("interlace") and 0 < rows < im.height:
        tile = im.tile[0]  # a plain tuple: Pillow 10 has no named tiles
        im._size = (im.width, rows)
        im.tile = [(tile[0], (0, 0, im.width, rows), *tile[2:])]


def subtract_pedestal(img: np.ndarray) -> np.ndarray:
    """Remove the per-column pedestal (vertical stripes), keeping the background at PEDESTAL."""
    col = np.median(img, axis=0)
    out = img.astype(np.int16) - col.astype(np.int16)[None, :] + PEDESTAL
    return np.clip(out, 0, 255).astype(np.uint8)


def find_spot(img: np.ndarray, window: int = 15, search: int = 192) -> tuple[int, int]:
    """Centre (row, col) of the brightest ``window``-px box within ``search`` px of the image centre.

    Falls back to the image centre when nothing stands above the noise, so faint
    events (NR 1 keV is invisible per pixel) are not cropped around a noise blip.
    """
    c = img.shape[0] // 2
    lo = c - search // 2
    region = img[lo : lo + search, lo : lo + search].astype(np.float64) - np.median(img)
    ii = np.pad(region.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    box = ii[window:, window:] - ii[:-window, window:] - ii[window:, :-window] + ii[:-window, :-window]
    r, q = np.unravel_index(np.argmax(box), box.shape)
    noise = 3.5 * window  # std of a box sum of window^2 pixels with sigma ~3.5
    if box[r, q] < 6 * noise:
        return c, c
    # refine to the light-weighted centroid around the best box
    r0, q0 = max(r - window // 2, 0), max(q - window // 2, 0)
    patch = np.clip(region[r0 : r + 2 * window, q0 : q + 2 * window], 0, None)
    rows, cols = np.indices(patch.shape)
    total = patch.sum()
    return (int(round(lo + r0 + (rows * patch).sum() / total)), int(round(lo + q0 + (cols * patch).sum() / total)))


def crop_origin(img: np.ndarray, size: int, mode: str = "centre") -> tuple[int, int]:
    """Top-left corner of the ``size`` crop, centred on the image ("centre") or the detected spot ("spot")."""
    if mode == "centre":
        r = q = img.shape[0] // 2
    elif mode == "spot":
        r, q = find_spot(img)
    else:
        raise ValueError(f"unknown crop mode {mode!r}; use 'centre' or 'spot'")
    return _placed(r, q, size, img.shape[0])


def _placed(r: int, q: int, size: int, side: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` box centred on (r, q), moved inside a ``side`` x ``side`` image."""
    half = size // 2
    r = min(max(r, half), side - (size - half))
    q = min(max(q, half), side - (size - half))
    return r - half, q - half


def crop(img: np.ndarray, size: int, mode: str = "centre") -> np.ndarray:
    r, q = crop_origin(img, size, mode)
    return np.ascontiguousarray(img[r : r + size, q : q + size])


def load_crop(path: str | Path, size: int, mode: str = "centre", pedestal: bool = True) -> np.ndarray:
    """Read, crop and (optionally) remove the column pedestal.

    A centred crop decodes only its rows and the ones above it; the pedestal is the median of each decoded
    column, over those rows (352 of 576 for a 128 px crop), and only the crop's columns need it.
    """
    if mode == "centre":
        r, q = _placed(IMAGE_SIZE // 2, IMAGE_SIZE // 2, size, IMAGE_SIZE)
        img = read_image(path, rows=r + size)
    else:
        img = read_image(path)
        r, q = crop_origin(img, size, mode)
    strip = img[:, q : q + size]
    if pedestal:
        strip = subtract_pedestal(strip)
    return np.ascontiguousarray(strip[r : r + size])
