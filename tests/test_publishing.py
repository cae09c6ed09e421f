"""Findings published over MQTT to a real broker (Debian's mosquitto on loopback) with the real paho client."""

from __future__ import annotations

import time

import pytest

from lriad_desktop.core.inspection.finding import Box, Defect, Finding, Verdict
from lriad_desktop.core.line.publishing import (Broker, FindingPublisher, PublishError, broker_problem, finding_message,
                                           parse_broker)
from mqtt_broker import Subscriber, start_broker


def _finding(name: str, anomalous: bool = True) -> Finding:
    defects = (Defect("scratch", Box(10, 20, 110, 60)),) if anomalous else ()
    return Finding(Verdict.ANOMALOUS if anomalous else Verdict.NORMAL, defects, ("A washer.",), "<answer/>",
                   "lriad-tiny", f"/line/in/{name}", (640, 480), "washer", {"total_ms": 12.0})


def _notes_until(publisher: FindingPublisher, word: str, timeout: float = 20.0) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen += publisher.notes()
        if any(word in line for line in seen):
            return seen
        time.sleep(0.05)
    raise AssertionError(f"no note with {word!r} within {timeout:.0f} s: {seen}")


def test_broker_addresses_and_topics():
    assert parse_broker("127.0.0.1:1884", "lriad/x/") == Broker("127.0.0.1", 1884, "lriad/x")
    assert parse_broker("broker.local") == Broker("broker.local", 1883, "lriad")
    assert parse_broker("[::1]:1999").address == "[::1]:1999"
    assert parse_broker("h:1", "plant/line4").finding_topic == "plant/line4/finding"
    for bad, why in [("", "no MQTT broker"), ("host:port", "must be a number"), ("host:0", "1 to 65535"),
                     ("tcp://host:1", "not a broker address")]:
        with pytest.raises(PublishError, match=why):
            parse_broker(bad)
    with pytest.raises(PublishError, match="topic prefix"):
        parse_broker("h:1", "lriad/#")
    assert broker_problem("") == "" and broker_problem("h:1883") == ""
    assert "must be a number" in broker_problem("h:x")


def test_the_message_holds_what_the_line_needs():
    msg = finding_message(_finding("a.png"), "/line/done/a.png", "2026-03-02T06:00:00.000+00:00")
    assert msg["image"] == "/line/done/a.png" and msg["verdict"] == "anomalous"
    assert msg["defects"] == [{"label": "scratch", "box": [10.0, 20.0, 110.0, 60.0]}]
    assert msg["model_version"] == "lriad-tiny" and msg["object"] == "washer" and msg["image_size"] == [640, 480]
    assert msg["time"] == "2026-03-02T06:00:00.000+00:00"
    assert "anomaly_score" not in msg  # this backend gave none
    assert finding_message(_finding("b.png", anomalous=False))["time"].endswith("+00:00")


def test_each_finding_is_one_qos1_message_and_the_status_is_retained(tmp_path):
    broker = start_broker(tmp_path)
    sub = Subscriber(broker.port, "lriad/x/finding")
    publisher = FindingPublisher(parse_broker(broker.address, "lriad/x")).start()
    try:
        _notes_until(publisher, "connected")
        for name in ("a.png", "b.png", "c.png"):
            assert publisher.publish(_finding(name, anomalous=name != "b.png"))
        got = sub.take(3)
        assert [m["image"] for m in got] == ["/line/in/a.png", "/line/in/b.png", "/line/in/c.png"]
        assert [m["verdict"] for m in got] == ["anomalous", "normal", "anomalous"]
        status = Subscriber(broker.port, "lriad/x/status")  # a later subscriber reads the retained status
        assert status.messages.get(timeout=10) == ("lriad/x/status", b"online")
        status.close()
    finally:
        left = publisher.close()
        sub.close()
    assert left == 0 and publisher.published == 3
    late = Subscriber(broker.port, "lriad/x/status")
    try:
        assert late.messages.get(timeout=10) == ("lriad/x/status", b"offline")
    finally:
        late.close()
        broker.stop()


def test_a_broker_that_goes_away_loses_nothing_and_says_so(tmp_path):
    broker = start_broker(tmp_path)
    sub = Subscriber(broker.port, "lriad/y/finding")  # persistent session: kept for it across the restart
    publisher = FindingPublisher(parse_broker(broker.address, "lriad/y")).start()
    try:
        _notes_until(publisher, "connected")
        publisher.publish(_finding("before.png"))
        assert sub.take(1)[0]["image"] == "/line/in/before.png"
        broker.stop()
        gone = _notes_until(publisher, "is gone")
        assert any("inspection goes on" in line for line in gone)
        for name in ("while1.png", "while2.png"):
            assert publisher.publish(_finding(name))  # queued, not lost, not blocking
        assert publisher.waiting == 2
        assert broker.start() == ""
        back = _notes_until(publisher, "is back")
        assert any("sending 2 waiting" in line for line in back)
        assert [m["image"] for m in sub.take(2, timeout=30)] == ["/line/in/while1.png", "/line/in/while2.png"]
    finally:
        left = publisher.close()
        sub.close()
        broker.stop()
    assert left == 0 and publisher.published == 3


def test_the_queue_for_a_missing_broker_is_bounded(tmp_path):
    from mqtt_broker import free_port

    publisher = FindingPublisher(Broker("127.0.0.1", free_port(), "lriad/z"), queue_limit=2).start()
    try:
        assert _notes_until(publisher, "is gone")
        assert publisher.publish(_finding("1.png")) and publisher.publish(_finding("2.png"))
        assert not publisher.publish(_finding("3.png"))
        full = publisher.notes()
        assert any("2 findings are waiting" in line and "3.png was not published" in line for line in full), full
    finally:
        assert publisher.close(flush_s=0.2) == 2
