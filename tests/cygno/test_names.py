import pytest

from idao.errors import DataError
from idao.cygno.names import parse_name

ER = "0.10449009388685226__CYGNO_60_40_ER_10_keV_930V_30cm_IDAO_iso_crop_hist_pic_run1_ev237;1.png"
NR = "-0.5065000057220459__CYGNO_60_40_He_NR_20_keV_930V_30cm_SRIM_IDAO_iso_crop_hist_pic_run3_ev269;1.png"


@pytest.mark.parametrize("name, particle, energy", [
    (ER, "ER", 10),
    (NR, "NR", 20),
    (ER.replace(";1.png", ".png"), "ER", 10),  # copies that lost the ';1' suffix
    (NR.replace(";1.png", ".png"), "NR", 20),
    ("-7.19e-05__CYGNO_60_40_ER_3_keV_930V_30cm_IDAO_iso_crop_hist_pic_run5_ev999;1.png", "ER", 3),
    ("3.1E+00__CYGNO_60_40_He_NR_1_keV_930V_30cm_SRIM_IDAO_iso_crop_hist_pic_run2_ev0;1.png", "NR", 1),
    ("-2__CYGNO_60_40_He_NR_30_keV_930V_30cm_SRIM_IDAO_iso_crop_hist_pic_run4_ev12.png", "NR", 30),
])
def test_train_names(name, particle, energy):
    parsed = parse_name(name)
    assert (parsed.particle, parsed.energy) == (particle, energy)
    assert parsed.id == name[: -len(".png")]


def test_test_name_gives_id_and_no_label():
    parsed = parse_name("/some/dir/0123456789abcdef0123456789abcdef01234567.png")
    assert parsed.id == "0123456789abcdef0123456789abcdef01234567"
    assert parsed.particle is None and parsed.energy is None


@pytest.mark.parametrize("name, message", [
    ("0.1__CYGNO_60_40_ER_ten_keV_930V_30cm_IDAO_iso_crop_hist_pic_run1_ev2;1.png", "without an '_ER_<E>_keV'"),
    ("0.1__CYGNO_60_40_ER_0_keV_930V_30cm_IDAO_iso_crop_hist_pic_run1_ev2;1.png", "not a positive number"),
    ("holiday.png", "not an IDAO file name"),
    ("0123456789ABCDEF0123456789ABCDEF01234567.png", "not an IDAO file name"),  # test ids are lowercase
    (ER.replace(".png", ".jpg"), "not a .png file"),
])
def test_bad_names_are_errors_naming_the_file(name, message):
    with pytest.raises(DataError, match=message) as err:
        parse_name(name)
    assert name in str(err.value)


def test_real_names_parse(real_images):
    labels = {(parse_name(p).particle, parse_name(p).energy) for p in real_images}
    assert labels == {("NR", 1), ("NR", 20), ("ER", 10), ("ER", 30)}
