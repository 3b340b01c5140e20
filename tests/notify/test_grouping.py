"""Repeats of one alert within the window become one "Repeated N times" message."""

from __future__ import annotations

from sage.notify import Alert, Channel
from sage.notify.grouping import RepeatGrouper

ALERT = Alert(title="DB error", message="too many connections")


def test_the_first_alert_goes_out_at_once():
    grouper = RepeatGrouper(60)
    assert grouper.offer(Channel.ERRORS, ALERT, now=0.0) is True


def test_repeats_inside_the_window_are_counted_not_sent():
    grouper = RepeatGrouper(60)
    grouper.offer(Channel.ERRORS, ALERT, now=0.0)
    assert [grouper.offer(Channel.ERRORS, ALERT, now=float(i)) for i in range(1, 48)] == [False] * 47
    assert grouper.due(now=30.0) == []


def test_the_end_of_the_window_yields_one_summary_with_the_count():
    grouper = RepeatGrouper(60)
    grouper.offer(Channel.ERRORS, ALERT, now=0.0)
    for i in range(47):
        grouper.offer(Channel.ERRORS, ALERT, now=1.0 + i)
    due = grouper.due(now=60.0)
    assert len(due) == 1
    assert due[0].count == 47
    assert due[0].channel is Channel.ERRORS


def test_a_storm_yields_one_summary_per_window():
    grouper = RepeatGrouper(10)
    grouper.offer(Channel.ERRORS, ALERT, now=0.0)
    summaries = 0
    for second in range(1, 31):
        grouper.offer(Channel.ERRORS, ALERT, now=float(second))
        summaries += len(grouper.due(now=float(second)))
    assert summaries == 3


def test_a_quiet_window_closes_so_the_next_occurrence_goes_out_at_once():
    grouper = RepeatGrouper(60)
    grouper.offer(Channel.ERRORS, ALERT, now=0.0)
    assert grouper.due(now=61.0) == []
    assert grouper.offer(Channel.ERRORS, ALERT, now=62.0) is True


def test_different_alerts_and_channels_are_grouped_separately():
    grouper = RepeatGrouper(60)
    assert grouper.offer(Channel.ERRORS, ALERT, now=0.0)
    assert grouper.offer(Channel.PERFORMANCE, ALERT, now=0.0)
    assert grouper.offer(Channel.ERRORS, Alert(title="DB error", message="other"), now=0.0)


def test_a_dedupe_key_groups_alerts_whose_text_differs():
    grouper = RepeatGrouper(60)
    assert grouper.offer(Channel.ERRORS, Alert(title="x", message="1", dedupe_key="k"), now=0.0)
    assert not grouper.offer(Channel.ERRORS, Alert(title="x", message="2", dedupe_key="k"), now=1.0)


def test_drain_returns_every_pending_summary():
    grouper = RepeatGrouper(60)
    grouper.offer(Channel.ERRORS, ALERT, now=0.0)
    grouper.offer(Channel.ERRORS, ALERT, now=1.0)
    assert [r.count for r in grouper.drain()] == [1]
    assert len(grouper) == 0


def test_a_zero_window_never_groups():
    grouper = RepeatGrouper(0)
    assert all(grouper.offer(Channel.ERRORS, ALERT, now=0.0) for _ in range(3))
