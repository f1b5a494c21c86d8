"""The catalog lists every registry a GanConfig field draws names from, and every name in it.

Per name (a reference, a row of the catalog table, accepted by GanConfig) the check is in
gensweep.testing's GAN component suite (tests/test_gan_contract.py runs it on every name)."""
from __future__ import annotations

import pytest

from gensweep.trainables.gan.catalog import REGISTRIES, components, markdown
from gensweep.trainables.gan.config import GanConfig


def test_catalog_covers_every_registered_name():
    listed = components()
    assert set(listed) == set(REGISTRIES)
    for field, names in listed.items():
        assert list(names) == REGISTRIES[field].names() and names
    assert markdown().count("\n") == 1 + sum(len(names) for names in listed.values())  # a row per name


@pytest.mark.parametrize("field", sorted(REGISTRIES))
def test_each_catalog_field_is_checked_against_its_registry(field):
    # the field exists (every listed name is accepted: the component suite), and an unlisted one is refused naming the registry
    with pytest.raises(ValueError, match=REGISTRIES[field].kind):
        GanConfig.model_validate({field: "no-such-component"}, context={"rules": False})


def test_no_registry_backed_field_is_missing():
    # every string field whose value a registry checks is in the catalog: probe with a bad name
    missing = []
    for field, info in GanConfig.model_fields.items():
        if info.annotation is not str or field in REGISTRIES:
            continue
        try:
            GanConfig.model_validate({field: "no-such-component"}, context={"rules": False})
        except ValueError as e:
            if "unknown" in str(e):
                missing.append(field)
    assert missing == []
