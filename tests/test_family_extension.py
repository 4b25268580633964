"""Adding a model family is one new file and one registration: the toy family of tests/toy_family.py, registered
by one line, is configured, saved, fitted, resumed and reloaded with no other file of the project touched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from toy_family import ToyFamily, ToySettings
from training_fixtures import SMALL_PARAMS, synthetic_notes, write_features

from synth.errors import ParameterError
from training.model.config import ModelConfig
from training.model.families import FAMILIES, build_models, latent_shape


@pytest.fixture
def toy(monkeypatch):
    """The one registration (a real family's line in training/model/families.py)."""
    monkeypatch.setitem(FAMILIES, "toy", ToyFamily())
    return ModelConfig(name="toy", architecture=ToySettings(latent=6)).with_schedule(batch_size=8, max_epochs=2,
                                                                                      patience=50)


def test_a_registered_family_owns_its_settings_in_the_config_and_its_json(toy, tmp_path):
    assert toy.layout == "toy" and isinstance(toy.family, ToyFamily)
    assert toy.to_dict()["architecture"] == {"latent": 6, "activation": "linear"}
    assert ModelConfig.from_dict(json.loads(toy.to_json())) == toy
    toy.save(tmp_path / "toy.json")
    assert ModelConfig.load(tmp_path / "toy.json") == toy
    # Its settings are checked by the family's own class; another family's field is refused by name.
    assert toy.with_changes(latent=3, batch_size=4).architecture == ToySettings(latent=3)
    with pytest.raises(ParameterError, match="toy architecture: latent must be a positive int, got 0"):
        toy.with_architecture(latent=0)
    with pytest.raises(ParameterError, match="the toy layout does not take pooling='max'"):
        toy.with_changes(pooling="max")
    assert latent_shape(toy, params=SMALL_PARAMS) == (6,)


def test_an_unregistered_family_is_refused_by_name():
    with pytest.raises(ParameterError, match="layout 'toy' is not one of"):
        ModelConfig(name="toy", architecture=ToySettings())
    doc = {"name": "toy", "layout": "toy", "architecture": {"latent": 6, "activation": "linear"},
           "schedule": ModelConfig().schedule.to_dict()}
    with pytest.raises(ParameterError, match="layout 'toy' is not one of"):
        ModelConfig.from_dict(doc)


def test_the_toy_family_fits_resumes_bit_for_bit_and_reloads(toy, tmp_path):
    pytest.importorskip("keras")
    from training.fit import FitOptions, fit
    from training.run import load_run

    features = write_features(tmp_path / "features", synthetic_notes(20))
    options = dict(verbose=0, run_eagerly=True)
    whole = fit(features=features, config=toy, out=tmp_path / "whole", options=FitOptions(**options))
    part = fit(features=features, config=toy, out=tmp_path / "part", options=FitOptions(max_epochs=1, **options))
    fit(features=features, config=None, out=part, options=FitOptions(resume=True, max_epochs=2, **options))
    assert load_run(part).config == toy and json.loads((part / "config.json").read_text())["config"] == toy.to_dict()

    def weights(run):
        trainer, _, _ = build_models(toy, params=SMALL_PARAMS)
        trainer.load_weights(run / "best.weights.h5")
        return trainer.get_weights()

    for a, b in zip(weights(whole), weights(part), strict=True):
        np.testing.assert_array_equal(a, b)
