import io

import numpy as np
import pytest
from PIL import Image

from idao.errors import DataError
from idao.cygno.images import crop, crop_origin, find_spot, load_crop, read_image, subtract_pedestal
from idao.cygno.simulate import render_event

NAME = "0.5__CYGNO_60_40_ER_10_keV_930V_30cm_IDAO_iso_crop_hist_pic_run1_ev2;1.png"


def write_png(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path)
    return path


@pytest.fixture
def event():
    return render_event("ER", 10, np.random.default_rng(0))


def test_reads_grayscale_and_identical_rgb(tmp_path, event):
    gray = read_image(write_png(tmp_path / "a.png", event))
    rgb = read_image(write_png(tmp_path / "b.png", np.stack([event] * 3, axis=-1)))
    assert gray.dtype == np.uint8 and gray.shape == (576, 576)
    np.testing.assert_array_equal(gray, event)
    np.testing.assert_array_equal(rgb, event)


def test_real_images_load(real_images):
    for path in real_images:
        img = read_image(path)
        assert img.shape == (576, 576) and img.dtype == np.uint8


def _bad_files(tmp_path, event):
    png = io.BytesIO()
    Image.fromarray(event).save(png, format="PNG")
    data = png.getvalue()
    rgb = np.stack([event, event, 255 - event], axis=-1)
    cases = {
        "truncated": (data[: len(data) // 2], "corrupt or truncated"),
        "zero-byte": (b"", "empty file"),
        "not-png": (b"GIF89a" + b"\0" * 100, "not a PNG file"),
    }
    for label, (payload, message) in cases.items():
        (tmp_path / f"{label}.png").write_bytes(payload)
        yield tmp_path / f"{label}.png", message
    yield write_png(tmp_path / "16bit.png", event.astype(np.uint16) * 200), "expected 8-bit grayscale"
    yield write_png(tmp_path / "rgb.png", rgb), "differing channels"
    yield write_png(tmp_path / "small.png", event[:500, :500]), "is 500x500; expected 576x576"
    (tmp_path / "dir.png").mkdir()  # unreadable as a file (chmod does not stop root)
    yield tmp_path / "dir.png", "cannot read file"


def test_bad_images_are_clear_errors(tmp_path, event):
    for path, message in _bad_files(tmp_path, event):
        with pytest.raises(DataError, match=message) as err:
            read_image(path)
        assert str(path) in str(err.value)


def test_pedestal_subtraction_removes_column_stripes(event):
    flat = subtract_pedestal(event)
    assert np.median(flat, axis=0).std() < 0.2 < np.median(event, axis=0).std()
    assert np.median(flat) == 100


def test_centre_and_spot_crops():
    rng = np.random.default_rng(3)
    img = np.clip(rng.normal(100, 3.4, (576, 576)), 0, 255).astype(np.uint8)
    img[340:350, 200:210] = 200  # a bright spot away from the centre
    assert find_spot(img) == pytest.approx((345, 205), abs=2)
    spot = crop(img, 64, "spot")
    assert spot.shape == (64, 64) and spot.max() == 200 and spot[32, 32] == 200
    centre = crop(img, 64, "centre")
    np.testing.assert_array_equal(centre, img[256:320, 256:320])
    noise_only = np.clip(rng.normal(100, 3.4, (576, 576)), 0, 255).astype(np.uint8)
    assert find_spot(noise_only) == (288, 288)  # nothing above the noise: fall back to the centre


def test_load_crop_end_to_end(tmp_path, event):
    out = load_crop(write_png(tmp_path / NAME, event), 128, "centre", pedestal=True)
    assert out.shape == (128, 128) and out.dtype == np.uint8


def test_pedestal_on_the_crop_columns_equals_the_full_image_one(tmp_path, event):
    """A spot crop's pedestal is the whole column's median; a centred crop decodes (and takes the median of) only
    its rows and the ones above it."""
    path = write_png(tmp_path / NAME, event)
    r, q = crop_origin(event, 128, "spot")
    expected = subtract_pedestal(event)[r : r + 128, q : q + 128]
    np.testing.assert_array_equal(load_crop(path, 128, "spot", pedestal=True), expected)
    r, q = crop_origin(event, 128, "centre")
    expected = subtract_pedestal(event[: r + 128])[r:, q : q + 128]
    np.testing.assert_array_equal(load_crop(path, 128, "centre", pedestal=True), expected)


def test_decoding_the_first_rows_only(tmp_path, event):
    """The first rows decode exactly as in the whole image, and a truncated file is still refused."""
    path = write_png(tmp_path / NAME, event)
    np.testing.assert_array_equal(read_image(path, rows=352), event[:352])
    rgb = write_png(tmp_path / "rgb.png", np.stack([event] * 3, axis=-1))
    np.testing.assert_array_equal(read_image(rgb, rows=100), event[:100])
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) * 4 // 5):  # the second: the crop's rows intact, the last ones missing
        (tmp_path / "cut.png").write_bytes(data[:cut])
        with pytest.raises(DataError, match="corrupt or truncated"):
            read_image(tmp_path / "cut.png", rows=352)
