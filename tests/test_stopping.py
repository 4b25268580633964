"""The stopping rule on its own (no TensorFlow): early stopping with a relative min_delta, the learning-rate
plateau schedule, the epoch bound, a non-finite loss, and the state a checkpoint carries."""

from __future__ import annotations

import json

import pytest

from synth.errors import DataError, ParameterError
from training.fit.stopping import Stop, StoppingRule, StoppingState, Verdict
from training.model.schedule import FitSchedule

RATE = 1e-3


def rule(**changes) -> StoppingRule:
    base = dict(patience=3, max_epochs=100, min_delta=0.0, lr_patience=0, lr_factor=0.5)
    return StoppingRule(**{**base, **changes})


def judge_all(the_rule: StoppingRule, losses, *, state: StoppingState | None = None,
              rate: float = RATE) -> list[Verdict]:
    """Judge one validation loss an epoch (training loss 1.0) until the rule stops the run; the verdicts."""
    state = StoppingState() if state is None else state
    verdicts = []
    for val_loss in losses:
        verdict = the_rule.judge(state, loss=1.0, val_loss=val_loss, learning_rate=rate)
        verdicts.append(verdict)
        state, rate = verdict.state, verdict.learning_rate
        if verdict.stop is not Stop.RUNNING:
            break
    return verdicts


def test_an_improvement_resets_the_wait():
    verdicts = judge_all(rule(), [1.0, 1.0, 1.0, 0.9, 0.95])
    assert [v.state.wait for v in verdicts] == [0, 1, 2, 0, 1]
    assert [v.improved for v in verdicts] == [True, False, False, True, False]
    assert verdicts[-1].state.best_epoch == 4 and verdicts[-1].state.best_val_loss == 0.9
    assert all(v.stop is Stop.RUNNING for v in verdicts)


def test_an_improvement_smaller_than_min_delta_does_not_reset_the_wait_but_is_the_best():
    # 1 % better each epoch under min_delta 5 %: the best weights follow, the patience runs out.
    verdicts = judge_all(rule(min_delta=0.05), [1.0, 0.99, 0.98, 0.97])
    assert [v.improved for v in verdicts] == [True] * 4
    assert [v.state.wait for v in verdicts] == [0, 1, 2, 3]
    assert verdicts[-1].stop is Stop.PATIENCE and verdicts[-1].state.best_epoch == 4
    # 6 % better resets it, against the loss that last reset it (1.0), not the latest tiny improvement.
    verdicts = judge_all(rule(min_delta=0.05), [1.0, 0.99, 0.94])
    assert [v.state.wait for v in verdicts] == [0, 1, 0] and verdicts[-1].state.patience_reference == 0.94
    # 0.15 % an epoch under min_delta 0.2 %: every second epoch is 0.3 % below the loss that last reset the
    # counters, so the run goes on (judged against the latest tiny improvement it would stop).
    verdicts = judge_all(rule(min_delta=0.002, patience=3), [0.9985**epoch for epoch in range(1, 41)])
    assert len(verdicts) == 40 and all(v.stop is Stop.RUNNING and v.improved for v in verdicts)
    assert max(v.state.wait for v in verdicts) == 1


def test_patience_exhausted_stops_the_run():
    verdicts = judge_all(rule(patience=2), [0.5, 0.6, 0.7, 0.1])
    assert len(verdicts) == 3 and verdicts[-1].stop is Stop.PATIENCE
    assert verdicts[-1].state.stopped is Stop.PATIENCE and verdicts[-1].state.epochs_done == 3
    assert (verdicts[-1].state.best_epoch, verdicts[-1].state.best_val_loss) == (1, 0.5)


def test_max_epochs_stops_the_run():
    verdicts = judge_all(rule(max_epochs=3), [1.0, 0.9, 0.8, 0.7])
    assert [v.stop for v in verdicts] == [Stop.RUNNING, Stop.RUNNING, Stop.MAX_EPOCHS]
    assert verdicts[-1].improved and verdicts[-1].state.epochs_done == 3
    # Patience running out on the last epoch is the reason given.
    assert judge_all(rule(max_epochs=3, patience=2), [1.0, 1.0, 1.0])[-1].stop is Stop.PATIENCE


def test_the_rate_is_multiplied_by_lr_factor_after_lr_patience_epochs_without_improvement():
    # Each verdict's rate is the next epoch's: epochs 3 and 5 end two epochs without improvement; epoch 7 ends
    # six, which stops the run without reducing the rate again.
    verdicts = judge_all(rule(patience=6, lr_patience=2, lr_factor=0.25), [1.0] * 10)
    assert [v.learning_rate for v in verdicts] == pytest.approx(
        [RATE, RATE, RATE / 4, RATE / 4, RATE / 16, RATE / 16, RATE / 16])
    assert verdicts[-1].stop is Stop.PATIENCE
    # An improvement restarts the count.
    verdicts = judge_all(rule(lr_patience=2), [1.0, 1.0, 0.5, 0.6, 0.7])
    assert [v.learning_rate for v in verdicts] == pytest.approx([RATE, RATE, RATE, RATE, RATE / 2])
    # On the epoch bound the rate is still judged, so an extended run resumes with the rate it would have had.
    assert judge_all(rule(max_epochs=3, lr_patience=2), [1.0, 1.0, 1.0])[-1].learning_rate == pytest.approx(RATE / 2)


def test_lr_patience_0_keeps_the_rate_constant():
    verdicts = judge_all(rule(patience=50, lr_patience=0), [1.0] * 20)
    assert {v.learning_rate for v in verdicts} == {RATE}


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_loss_stops_the_run_and_leaves_the_counters(bad):
    start = judge_all(rule(), [1.0, 1.1])[-1].state
    for losses in ((1.0, bad), (bad, 1.0)):
        verdict = rule().judge(start, loss=losses[0], val_loss=losses[1], learning_rate=RATE)
        assert (verdict.stop, verdict.improved, verdict.learning_rate) == (Stop.NON_FINITE, False, RATE)
        assert verdict.state == StoppingState(epochs_done=3, best_val_loss=1.0, best_epoch=1, wait=1, lr_wait=1,
                                              patience_reference=1.0, stopped=Stop.NON_FINITE)


def test_judging_changes_no_state_in_place():
    state = StoppingState(epochs_done=2, best_val_loss=1.0, best_epoch=1, wait=1, lr_wait=1, patience_reference=1.0)
    before = dict(vars(state))
    rule().judge(state, loss=1.0, val_loss=0.5, learning_rate=RATE)
    assert vars(state) == before


def test_a_resumed_run_trains_on_unless_stopped_for_good_or_at_its_bound():
    at = StoppingState(epochs_done=5)
    assert rule(max_epochs=10).on_resume(at) is Stop.RUNNING
    assert rule(max_epochs=5).on_resume(at) is Stop.MAX_EPOCHS
    # A larger bound extends a run its bound stopped; a run stopped for good stays stopped.
    assert rule(max_epochs=10).on_resume(StoppingState(epochs_done=5, stopped=Stop.MAX_EPOCHS)) is Stop.RUNNING
    for reason in (Stop.PATIENCE, Stop.NON_FINITE):
        assert rule(max_epochs=10).on_resume(StoppingState(epochs_done=5, stopped=reason)) is reason


def test_the_stop_reasons_are_the_strings_status_json_has_always_held():
    assert {s.name: s.value for s in Stop} == {"RUNNING": "running", "PATIENCE": "early_stopping",
                                               "MAX_EPOCHS": "max_epochs", "NON_FINITE": "non_finite_loss"}


def test_the_state_round_trips_through_a_checkpoint_and_reads_old_ones():
    state = judge_all(rule(lr_patience=5), [1.0, 0.5, 0.7])[-1].state
    doc = json.loads(json.dumps(state.to_doc()))
    assert doc["stopped"] == "running" and StoppingState.from_doc(doc) == state
    # A checkpoint written before lr_wait, patience_reference and stopped were kept.
    old = StoppingState.from_doc({"epochs_done": 5, "best_val_loss": 0.5, "best_epoch": 4, "wait": 1})
    assert old == StoppingState(epochs_done=5, best_val_loss=0.5, best_epoch=4, wait=1, lr_wait=0,
                                patience_reference=0.5, stopped=Stop.RUNNING)
    with pytest.raises(DataError, match="unknown stop reason 'bored'"):
        StoppingState.from_doc(dict(doc, stopped="bored"))


def test_the_rule_of_a_schedule_and_bad_rules():
    schedule = FitSchedule(patience=4, max_epochs=9, min_delta=0.01, lr_patience=2, lr_factor=0.3)
    assert StoppingRule.from_schedule(schedule) == StoppingRule(patience=4, max_epochs=9, min_delta=0.01, lr_patience=2,
                                                            lr_factor=0.3)
    for bad, named in (({"patience": 0}, "patience"), ({"max_epochs": 1.5}, "max_epochs"),
                       ({"lr_patience": -1}, "lr_patience"), ({"lr_factor": 1.0}, "lr_factor"),
                       ({"min_delta": 1.0}, "min_delta"), ({"patience": True}, "patience")):
        with pytest.raises(ParameterError, match=named):
            rule(**bad)
