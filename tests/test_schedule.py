"""The fitting schedule: its fields, their checks, its JSON, and the train command's flags that set it."""

from __future__ import annotations

import argparse
import json

import pytest

from synth.errors import ParameterError
from training.model.config import VARIANT_NAMES, default_config, variant
from training.model.schedule import RESUMABLE_FIELDS, SCHEDULE_FIELDS, FitSchedule


def test_schedule_fields_and_the_ones_a_resume_may_change():
    assert SCHEDULE_FIELDS == ("learning_rate", "clipnorm", "patience", "max_epochs", "min_delta", "lr_patience",
                               "lr_factor", "seed", "batch_size")
    # The seed draws the start and every epoch's order, the batch cuts it: a resumed run keeps both.
    assert set(SCHEDULE_FIELDS) - set(RESUMABLE_FIELDS) == {"seed", "batch_size"}
    assert default_config().schedule == FitSchedule()


def test_schedule_json_round_trip_and_legacy_defaults():
    for name in VARIANT_NAMES:
        schedule = variant(name).schedule
        assert FitSchedule.from_dict(json.loads(json.dumps(schedule.to_dict()))) == schedule
    # Runs written before lr_patience, lr_factor, min_delta and clipnorm existed were fitted without them.
    oldest = {"learning_rate": 1e-3, "batch_size": 64, "patience": 10, "max_epochs": 300, "seed": 0}
    assert FitSchedule.from_dict(oldest) == FitSchedule()
    assert isinstance(FitSchedule(learning_rate=1).learning_rate, float)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"batch_size": 0}, "schedule: batch_size must be a positive int, got 0"),
        ({"patience": True}, "schedule: patience must be a positive int, got True"),
        ({"max_epochs": 1.5}, "schedule: max_epochs must be a positive int, got 1.5"),
        ({"seed": -1}, "schedule: seed must be a non-negative int, got -1"),
        ({"lr_patience": -1}, "schedule: lr_patience must be a non-negative int"),
        ({"learning_rate": 0}, "schedule: learning_rate must be positive, got 0.0"),
        ({"learning_rate": "fast"}, "schedule: learning_rate must be a number"),
        ({"lr_factor": 1.0}, "schedule: lr_factor must be a number in \\[0.0, 1.0\\)"),
        ({"lr_factor": 0}, "schedule: lr_factor must be in \\(0, 1\\)"),
        ({"min_delta": 1.0}, "schedule: min_delta must be a number in"),
        ({"clipnorm": 0}, "schedule: clipnorm must be null or a positive number, got 0"),
        ({"clipnorm": True}, "schedule: clipnorm must be null or a positive number, got True"),
    ],
)
def test_bad_schedules_name_the_field(change, message):
    with pytest.raises(ParameterError, match=message):
        FitSchedule(**change)
    with pytest.raises(ParameterError, match=f"run.json: {message}"):
        FitSchedule.from_dict(dict(FitSchedule().to_dict(), **change), source="run.json")


def test_unknown_and_missing_schedule_keys():
    with pytest.raises(ParameterError, match="unknown keys \\['filters'\\]"):
        FitSchedule().replace(filters=(4,))
    with pytest.raises(ParameterError, match="config: schedule: missing keys \\['batch_size'\\], unknown keys \\['dense'\\]"):
        FitSchedule.from_dict({"learning_rate": 1e-3, "patience": 10, "max_epochs": 3, "seed": 0, "dense": 8})
    with pytest.raises(ParameterError, match="expected a JSON object, got list"):
        FitSchedule.from_dict([])


def test_a_config_changes_its_schedule_apart_from_its_architecture():
    config = default_config()
    assert config.with_schedule(learning_rate=1e-4).schedule == FitSchedule(learning_rate=1e-4)
    assert config.with_schedule(learning_rate=1e-4).replace(schedule=config.schedule) == config
    both = config.with_changes(filters=(4, 8, 16), batch_size=8)
    assert (both.architecture.filters, both.schedule.batch_size) == ((4, 8, 16), 8)
    with pytest.raises(ParameterError, match="unknown keys \\['pooling'\\]"):
        config.with_schedule(pooling="avg")


def test_the_train_commands_schedule_flags_are_the_schedule_fields_a_fit_may_override():
    from training.commands.train import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = vars(parser.parse_args(["--data", "d", "--out", "o"]))
    assert set(RESUMABLE_FIELDS) <= set(flags)
    # The two a resume keeps have flags of their own, refused or checked on --resume.
    assert {"seed", "global_batch"} <= set(flags)
    args = parser.parse_args(["--data", "d", "--out", "o", "--learning-rate", "3e-4", "--lr-factor", "0.25",
                              "--max-epochs", "9", "--clipnorm", "1"])
    # What the command hands fit() as the schedule's overrides (training/commands/train.py).
    given = {key: getattr(args, key) for key in RESUMABLE_FIELDS if getattr(args, key) is not None}
    assert FitSchedule().replace(**given) == FitSchedule(learning_rate=3e-4, lr_factor=0.25, max_epochs=9,
                                                         clipnorm=1.0)
