"""The line's settings in the app: findings over MQTT to a real mosquitto, large images in tiles, and the checks
that keep a bad broker, topic or tile policy out of the settings."""

from __future__ import annotations

import pytest

from lriad_desktop.core.settings import Settings, SettingsError
from mqtt_broker import Subscriber, free_port, start_broker
from test_ui_helpers import UI_MARKS, make_window, no_leaked_windows, part_image  # noqa: F401

pytestmark = UI_MARKS


def test_bad_line_settings_are_refused_with_the_reason():
    good = Settings().with_changes(tiles="off, circuit board=4x3", mqtt_broker="127.0.0.1:1883", mqtt_topic="a/b")
    assert good.problems() == []
    for change, why in [({"tiles": "4x"}, "Tiles for large images: '4x' is not a tile grid"),
                        ({"mqtt_broker": "host:port"}, "MQTT broker: 'host:port': the port must be a number"),
                        ({"mqtt_topic": "line/#"}, "Topic prefix: 'line/#' can't be a topic prefix")]:
        with pytest.raises(SettingsError, match=why):
            good.with_changes(**change)


def test_each_finding_is_published_and_large_images_go_in_tiles(qtbot, make_window, tmp_path):
    broker = start_broker(tmp_path)
    sub = Subscriber(broker.port, "lriad/app/finding")
    folder = tmp_path / "gasket"  # (a folder named like a line, line4, is not taken as the object)
    folder.mkdir()
    big = part_image(folder / "big.png", size=(640, 480), seed=3)
    window = make_window(Settings(auto_inspect=True, mqtt_broker=broker.address, mqtt_topic="lriad/app",
                                  tiles="off, gasket=2x2"), store_path=tmp_path / "reviews.sqlite3")
    notices = []
    window.controller.notice.connect(notices.append)
    try:
        qtbot.waitUntil(lambda: window.controller.inspection.inspector is not None, timeout=60000)
        window.controller.add_paths([str(big)])
        qtbot.waitUntil(lambda: window.controller.queue.rowCount() == 1
                        and window.controller.queue.entry(0).finding is not None, timeout=60000)
        finding = window.controller.queue.entry(0).finding
        assert finding.tiling is not None and (finding.tiling.columns, finding.tiling.rows) == (2, 2)
        message = sub.take(1, timeout=20)[0]
        assert message["image"] == str(big) and message["verdict"] == finding.verdict.value
        assert message["tiling"]["columns"] == 2 and message["object"] == "gasket"
        qtbot.waitUntil(lambda: any(n.startswith("MQTT: connected to") for n in notices), timeout=5000)

        window.controller.update_settings(window.controller.settings.with_changes(mqtt_broker=""))
        assert window.controller.publishing.broker is None
    finally:
        window.close()
        sub.close()
        broker.stop()


def test_a_broker_that_is_not_there_is_a_notice_and_inspection_goes_on(qtbot, make_window, tmp_path):
    window = make_window(Settings(auto_inspect=True, mqtt_broker=f"127.0.0.1:{free_port()}"),
                         store_path=tmp_path / "reviews.sqlite3")
    notices = []
    window.controller.notice.connect(notices.append)
    qtbot.waitUntil(lambda: any("MQTT: the broker at" in n and "is gone" in n for n in notices), timeout=15000)
    window.controller.add_paths([str(part_image(tmp_path / "a.png", seed=1))])
    qtbot.waitUntil(lambda: window.controller.queue.rowCount() == 1
                    and window.controller.queue.entry(0).finding is not None, timeout=60000)
    window.close()
    assert any("1 finding was not delivered" in n for n in notices), notices
