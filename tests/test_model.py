"""The autoencoder family: config JSON, named variants, shapes, shared weights, and a training step each."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from training_fixtures import LEGACY_FLAT_PATCH, SMALL_PARAMS, flat_form, small_config, synthetic_notes

from synth.errors import ParameterError
from synth.spectrogram import SpectrogramParams
from training.model.config import (
    OWN_VARIANT_NAMES,
    PAPER_VARIANT_NAMES,
    VARIANT_NAMES,
    ModelConfig,
    default_config,
    variant,
)
from training.model.patch import PatchSettings
from training.model.schedule import SCHEDULE_FIELDS

keras = pytest.importorskip("keras")
from training.model.families import build_models, latent_shape  # noqa: E402

PAPER = SpectrogramParams()


# ---------------------------------------------------------------------------------------------- config
def test_config_json_round_trip(tmp_path):
    for name in VARIANT_NAMES:
        config = variant(name)
        assert ModelConfig.from_dict(json.loads(config.to_json())) == config
    path = tmp_path / "c.json"
    variant("kr_l2_D").save(path)
    assert ModelConfig.load(path) == variant("kr_l2_D")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"bogus": 1}, "unknown keys \\['bogus'\\]"),
        ({"architecture": {"pooling": "median"}}, "pooling='median'"),
        ({"architecture": {"filters": []}}, "filters"),
        ({"architecture": {"dense": 0}}, "dense"),
        ({"architecture": {"dense": True}}, "dense"),
        ({"architecture": {"dropout_rate": 1.5}}, "dropout_rate"),
        ({"architecture": {"regularizer_norm": "l3"}}, "regularizer_norm"),
        ({"architecture": {"output_activation": "relu"}}, "output_activation"),
        ({"architecture": {"patch_frames": 64}}, "conv2d architecture: missing keys \\[\\], unknown keys \\['patch_frames'\\]"),
        ({"layout": "patch"}, "patch architecture: missing keys \\['patch_frames'\\]"),
        ({"layout": "toy"}, "layout 'toy' is not one of"),
        ({"architecture": [1]}, "test.json: architecture: expected a JSON object"),
        ({"schedule": {**default_config().schedule.to_dict(), "batch_size": 0}}, "test.json: schedule: batch_size must be a positive int"),
        ({"schedule": {**default_config().schedule.to_dict(), "seed": -1}}, "test.json: schedule: seed must be a non-negative int"),
        ({"schedule": [1]}, "test.json: schedule: expected a JSON object"),
        # The schedule and architecture are nested, or flat as in a config written before (never both).
        ({"patience": 3}, "unknown keys \\['patience'\\]"),
        ({"pooling": "max"}, "unknown keys \\['pooling'\\]"),
    ],
)
def test_config_rejects_bad_dicts(change, message):
    data = default_config().to_dict()
    if isinstance(change.get("architecture"), dict):
        change = {"architecture": {**data["architecture"], **change["architecture"]}}
    data.update(change)
    with pytest.raises(ParameterError, match=message):
        ModelConfig.from_dict(data, source="test.json")


def test_config_rejects_missing_key_and_bad_files(tmp_path):
    data = default_config().to_dict()
    del data["schedule"]["patience"]
    with pytest.raises(ParameterError, match="schedule: missing keys \\['patience'\\]"):
        ModelConfig.from_dict(data)
    data = default_config().to_dict()
    del data["schedule"]
    with pytest.raises(ParameterError, match="missing keys \\['schedule'\\]"):
        ModelConfig.from_dict(data)
    data = default_config().to_dict()
    del data["architecture"]["pooling"]
    with pytest.raises(ParameterError, match="conv2d architecture: missing keys \\['pooling'\\]"):
        ModelConfig.from_dict(data)
    # A flat config (written before the nesting) without the schedule's fields names each.
    data = {k: v for k, v in flat_form(default_config()).items() if k != "schedule"}
    with pytest.raises(ParameterError, match="schedule: missing keys \\['learning_rate', 'patience', 'max_epochs', "
                                             "'seed', 'batch_size'\\]"):
        ModelConfig.from_dict(data)
    # The architecture is one registered family's own settings, found by their class.
    with pytest.raises(ParameterError, match="architecture must be a family's settings, got dict"):
        default_config().replace(architecture={"pooling": "max"})

    @dataclasses.dataclass(frozen=True)
    class Unregistered(PatchSettings):
        pass

    with pytest.raises(ParameterError, match="Unregistered is not the settings of the patch family \\(PatchSettings\\)"):
        default_config().replace(architecture=Unregistered())
    with pytest.raises(ParameterError, match="schedule must be a FitSchedule, got dict"):
        default_config().replace(schedule={"seed": 1})
    with pytest.raises(ParameterError, match="unknown keys \\['seed'\\]"):
        default_config().replace(seed=1)
    with pytest.raises(ParameterError, match="no such model config"):
        ModelConfig.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ParameterError, match="not a readable JSON"):
        ModelConfig.load(tmp_path / "bad.json")


def test_variants_match_the_papers_tables():
    assert len(PAPER_VARIANT_NAMES) == 24 and len(set(VARIANT_NAMES)) == len(VARIANT_NAMES)
    assert set(VARIANT_NAMES) == set(PAPER_VARIANT_NAMES) | set(OWN_VARIANT_NAMES)
    assert default_config() == variant("no_dense") and default_config().architecture.dense is None
    base = variant("no_reg").architecture
    assert (base.pooling, base.dense, base.regularizer, base.dropout_where) == ("max", 8192, "none", "none")
    assert variant("dense").replace(name="no_reg") == variant("no_reg")
    assert variant("latent_2048").architecture.dense == 2048 and variant("pool_avg").architecture.pooling == "avg"
    assert variant("pool_none").architecture.dense == 8192
    ar = variant("ar_l1_ED").architecture
    assert (ar.regularizer, ar.regularizer_norm, ar.regularizer_where) == ("activity", "l1", "ED")
    assert variant("dropout_D").architecture.dropout_where == "D"
    with pytest.raises(ParameterError, match="unknown model variant 'nope'"):
        variant("nope")


# ---------------------------------------------------------------------------------------------- shapes
def test_latent_shapes_at_the_papers_input():
    assert latent_shape(default_config(), params=PAPER) == (2, 8, 128)  # 2048 values, 3.1% of 128 x 512
    assert latent_shape(variant("pool_none"), params=PAPER) == (8192,)
    assert latent_shape(variant("no_dense").with_architecture(pooling="none"), params=PAPER) == (2, 8, 128)


def test_default_model_has_the_prototypes_size():
    autoencoder, encoder, decoder = build_models(default_config(), params=PAPER)
    assert tuple(encoder.output.shape[1:]) == (2, 8, 128)
    assert tuple(decoder.output.shape[1:]) == (128, 512)
    assert tuple(autoencoder.input.shape[1:]) == (128, 512)
    # REFERENCE.md's prototype decoder had 0.43 M parameters.
    assert decoder.count_params() == 426_721
    assert autoencoder.count_params() == encoder.count_params() + decoder.count_params()


def test_indivisible_input_is_refused():
    odd = SpectrogramParams(n_mels=96, frames=64)  # 96 is not a multiple of 64
    with pytest.raises(ParameterError, match="n_mels=96 is not a multiple of 64"):
        build_models(small_config(), params=odd)
    with pytest.raises(ParameterError, match="cannot be divided"):
        latent_shape(default_config(), params=SpectrogramParams(frames=500))


def test_encoder_then_decoder_equals_autoencoder():
    x = synthetic_notes(3)
    for name in ("no_dense", "no_reg"):
        autoencoder, encoder, decoder = build_models(small_config(name), params=SMALL_PARAMS)
        whole = np.asarray(autoencoder(x, training=False))
        halves = np.asarray(decoder(encoder(x, training=False), training=False))
        assert whole.shape == x.shape
        np.testing.assert_array_equal(whole, halves)
        # Shared weights: changing the decoder changes the autoencoder.
        w = decoder.get_layer("output").kernel
        w.assign(w.numpy() * 0.0)
        np.testing.assert_allclose(np.asarray(autoencoder(x, training=False)), 0.5, atol=1e-6)


def test_output_activations():
    x = synthetic_notes(2)
    autoencoder, _, _ = build_models(small_config(), params=SMALL_PARAMS)
    y = np.asarray(autoencoder(x))
    assert y.min() >= 0 and y.max() <= 1
    autoencoder, _, _ = build_models(small_config(output_activation="softmax"), params=SMALL_PARAMS)
    y = np.asarray(autoencoder(x))
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)  # softmax over the mel axis


def test_mixed_precision_keeps_the_output_float32():
    old = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        autoencoder, encoder, decoder = build_models(small_config(), params=SMALL_PARAMS)
    finally:
        keras.mixed_precision.set_global_policy(old)
    assert decoder.get_layer("dec_conv0").compute_dtype == "float16"
    assert decoder.output.dtype == "float32"


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_every_variant_builds_and_trains_a_step(name):
    config = small_config(name)
    autoencoder, encoder, decoder = build_models(config, params=SMALL_PARAMS)
    assert tuple(encoder.output.shape[1:]) == latent_shape(config, params=SMALL_PARAMS)
    # Eager steps: the models are tiny and tracing would dominate the test's time.
    autoencoder.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", run_eagerly=True)
    x = synthetic_notes(4)
    keys = np.array([[48], [60], [60], [72]], np.int32)
    if config.family.starts_from_features:
        # Its fixed tables (the per-key bases, non-trainable) come from its start; zero, they would pass no
        # gradient to the maps that train. Any values stand in for a start here.
        rng = np.random.default_rng(0)
        for w in autoencoder.non_trainable_weights:
            w.assign(rng.uniform(0.0, 0.1, w.shape).astype(w.dtype))
    before = [np.array(w) for w in autoencoder.trainable_weights]
    loss = float(autoencoder.train_on_batch(config.family.trainer_inputs(x, keys, keys), x))
    assert np.isfinite(loss)
    changed = [not np.array_equal(a, np.array(b)) for a, b in zip(before, autoencoder.trainable_weights, strict=True)]
    assert all(changed), f"{name}: some weights did not move"
    if getattr(config.architecture, "regularizer", "none") != "none":
        assert autoencoder.losses, f"{name}: no regularisation loss"


@pytest.mark.parametrize("name", VARIANT_NAMES)
def test_configs_of_every_earlier_form_load_as_the_same_config(name):
    """config.json as runs wrote it before each family owned its settings (one flat object of every family's
    fields, the schedule nested: the fixture is checked against ModelConfig.to_dict at 42c02d7 for every
    variant) and before the schedule was split out (all flat) read as the variant itself."""
    config = variant(name)
    for nested in (True, False):
        assert ModelConfig.from_dict(json.loads(json.dumps(flat_form(config, nested_schedule=nested)))) == config


def test_configs_written_before_the_schedule_split_load_as_the_same_config():
    config = ModelConfig.from_dict(json.loads(json.dumps(LEGACY_FLAT_PATCH)))
    assert config == variant("patch")
    assert (config.schedule.learning_rate, config.schedule.batch_size, config.schedule.clipnorm) == (1e-4, 16, 1.0)
    # Written again: the family's name, its own settings and the schedule, each one object.
    data = config.to_dict()
    assert data == {"name": "patch", "layout": "patch", "architecture": {"filters": [256], "patch_frames": 64},
                    "schedule": {k: LEGACY_FLAT_PATCH[k] for k in SCHEDULE_FIELDS}}
    # The oldest runs had none of the schedule fields added since: they read as those runs were fitted.
    oldest = {k: v for k, v in flat_form(variant("no_dense")).items() if k != "schedule"}
    oldest.update(learning_rate=1e-3, batch_size=64, patience=10, max_epochs=300, seed=0)
    assert ModelConfig.from_dict(oldest) == variant("no_dense")


@pytest.mark.parametrize("changes, named", [({"dense": 64}, "dense=64"), ({"hidden": 8}, "hidden=8"),
                                            ({"keys": [60, 72]}, "keys=\\[60, 72\\]"),
                                            ({"output_activation": "sigmoid"}, "output_activation='sigmoid'")])
def test_a_flat_config_asking_its_family_for_what_it_cannot_build_is_refused(changes, named):
    with pytest.raises(ParameterError, match="the patch layout does not take " + named):
        ModelConfig.from_dict(dict(LEGACY_FLAT_PATCH, **changes))
    # What the patch families ignored then (the conv stack's shape) they ignore now.
    assert ModelConfig.from_dict(dict(LEGACY_FLAT_PATCH, kernel_size=6, pooling="avg")) == variant("patch")


def test_runs_written_before_output_layer_existed_read_as_conv():
    data = flat_form(default_config())
    del data["output_layer"]
    assert ModelConfig.from_dict(data).architecture.output_layer == "conv"
    for layer in ("conv", "conv_transpose"):
        _, _, decoder = build_models(small_config(output_layer=layer), params=SMALL_PARAMS)
        cls = "Conv2DTranspose" if layer == "conv_transpose" else "Conv2D"
        assert type(decoder.get_layer("output")).__name__ == cls
        assert decoder.get_layer("output").kernel.shape[:2] == (4, 4)


def test_own_variants_keep_the_papers_latent_size_and_change_only_what_they_name():
    paper = variant("no_dense")
    for name in OWN_VARIANT_NAMES:
        config = variant(name)
        shape = latent_shape(config, params=PAPER)
        patches = config.layout in ("patch", "keyboard", "home_key")
        assert shape == ((1, 8, 256) if patches else (2, 8, 128)), name
        if patches:  # another family: its settings are its own
            assert config.architecture.filters == (256,) and config.architecture.patch_frames == 64, name
        else:
            mine, theirs = config.architecture.to_dict(), paper.architecture.to_dict()
            changed = {k for k, v in mine.items() if v != theirs[k]}
            assert changed and changed <= {"output_activation", "activation", "residual_blocks", "frequency_bias",
                                           "mel_head"}, (name, changed)
        # The schedule: a smaller batch; the patch families a slower, clipped, plateau-reduced rate, the
        # keyboard's a shorter patience for hour-long epochs, the home key one epoch (it is fitted, not trained).
        rescheduled = {k for k, v in config.schedule.to_dict().items() if v != paper.schedule.to_dict()[k]}
        allowed = {"batch_size"} | ({"learning_rate", "lr_patience", "min_delta", "clipnorm"} if patches else set())
        allowed |= {"keyboard": {"patience"}, "home_key": {"patience", "max_epochs"}}.get(config.layout, set())
        assert "batch_size" in rescheduled and rescheduled <= allowed, (name, rescheduled)


def test_clip_output_reaches_the_floor_and_passes_gradients_straight_through():
    _, _, decoder = build_models(small_config(output_activation="clip"), params=SMALL_PARAMS)
    import tensorflow as tf

    output = decoder.get_layer("output")
    output.bias.assign(np.full(output.bias.shape, -5.0, np.float32))  # every pixel far below the floor
    z = tf.constant(np.zeros((1, *decoder.input.shape[1:]), np.float32))
    with tf.GradientTape() as tape:
        y = decoder(z)
        loss = tf.reduce_mean((y - 0.5) ** 2)
    assert float(tf.reduce_max(y)) == 0.0  # exactly the floor, which a sigmoid never reaches
    # A sigmoid this far down, or a plain clip, would pass (almost) no gradient back to the bias.
    (grad,) = tape.gradient(loss, [output.bias])
    assert float(grad[0]) == pytest.approx(-1.0, rel=1e-5)  # d/db mean((b - 0.5)^2) at y = 0


def test_frequency_bias_and_mel_head_are_where_their_docstrings_say():
    """clip_fb: one bias per (mel row, channel) after each decoder stage and one per row before the output's
    clip, zero at first; clip_mh: a 1x1 mix to mel_head channels, then one Dense over each frame's mel axis."""
    _, _, decoder = build_models(small_config("clip_fb"), params=SMALL_PARAMS)
    rows = SMALL_PARAMS.n_mels
    config = small_config("clip_fb")
    for i, f in enumerate(config.architecture.filters):
        bias = decoder.get_layer(f"dec_fbias{i}").get_weights()[0]
        assert bias.shape == (rows // 4**i, 1, f)  # stage i gives back the rows encoder stage i took
        assert not bias.any()
    assert decoder.get_layer("output_fbias").get_weights()[0].shape == (rows, 1, 1)
    config = small_config("clip_mh")
    _, _, decoder = build_models(config, params=SMALL_PARAMS)
    assert decoder.get_layer("mel_head_mix").kernel.shape == (1, 1, config.architecture.filters[0], config.architecture.mel_head)
    assert decoder.get_layer("output").kernel.shape == (rows * config.architecture.mel_head, rows)
    assert tuple(decoder.output.shape[1:]) == (rows, SMALL_PARAMS.frames)


def test_residual_blocks_sit_at_the_deepest_stage_only():
    config = small_config(residual_blocks=2)
    _, encoder, decoder = build_models(config, params=SMALL_PARAMS)
    names = [layer.name for layer in encoder.layers + decoder.layers]
    assert [n for n in names if n.endswith("_add")] == ["enc_res0_add", "enc_res1_add", "dec_res0_add", "dec_res1_add"]
    deepest = config.architecture.filters[-1]
    for model, prefix in ((encoder, "enc"), (decoder, "dec")):
        for b in range(2):
            assert model.get_layer(f"{prefix}_res{b}_a").kernel.shape == (3, 3, deepest, deepest)


@pytest.mark.parametrize("name, changes", [("no_dense", {}), ("clip_res", {}), ("no_dense", {"kernel_size": 6}),
                                           ("pool_avg", {"dense": None}), ("clip_fb", {}), ("clip_mh", {})])
def test_the_folded_decoder_is_the_same_map(name, changes):
    """Upsampling + stride-2 transposed convolution == one stride-4 transposed convolution with the summed
    kernel, exactly, at every output position (edges included)."""
    from training.model.conv import folded_decoder, folds

    config = small_config(name, **changes)
    _, _, decoder = build_models(config, params=SMALL_PARAMS)
    rng = np.random.default_rng(0)
    for layer in decoder.layers:  # random biases too, so that the edges are not trivially zero
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in weights])
    folded = folded_decoder(decoder, config, params=SMALL_PARAMS)
    z = rng.uniform(-1, 1, (4, *latent_shape(config, params=SMALL_PARAMS))).astype(np.float32)
    np.testing.assert_allclose(folded(z).numpy(), decoder(z).numpy(), atol=1e-5)
    stages = [i for i in range(config.architecture.stages) if folds(config, i)]
    assert stages == ([0, 1] if config.architecture.residual_blocks else [0, 1, 2])
    assert not [layer for layer in folded.layers if type(layer).__name__ == "UpSampling2D" and
                int(layer.name[len("dec_unpool"):]) in stages]


@pytest.mark.parametrize("name", ["no_dense", "patch", "keyboard"])
def test_weights_load_whole_or_not_at_all(name, tmp_path):
    """A run's weights come back into every variable of the model (and so of the encoder and decoder that
    share them); a file of another architecture is refused whole, where Keras would load what fits, warn
    that the rest "will retain their freshly-initialized weights", and go on."""
    from synth.errors import DataError
    from training.fit import load_weights_whole

    config = small_config(name)
    keras.utils.set_random_seed(1)
    trained, _, _ = build_models(config, params=SMALL_PARAMS)
    trained.save_weights(tmp_path / "w.weights.h5")
    keras.utils.set_random_seed(2)
    fresh, encoder, decoder = build_models(config, params=SMALL_PARAMS)
    assert any(not np.array_equal(a, b) for a, b in zip(trained.get_weights(), fresh.get_weights(), strict=True))
    load_weights_whole(fresh, tmp_path / "w.weights.h5", what="the test model")
    for a, b in zip(trained.get_weights(), fresh.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(encoder.weights) + len(decoder.weights) == len(fresh.weights)
    other, _, _ = build_models(small_config(name, filters=(16,) if len(config.architecture.filters) == 1 else (4, 8, 32)),
                               params=SMALL_PARAMS)
    with pytest.raises(DataError, match="does not fit the other model"):
        load_weights_whole(other, tmp_path / "w.weights.h5", what="the other model")
