"""Verdicts to the line over MQTT: one JSON message per finding, QoS 1, kept while the broker is gone.

A PLC, a reject gate or a dashboard subscribes to `PREFIX/finding`; each message is one finding:
`{"image", "verdict", "anomaly_score" (where the backend scores), "defects": [{"label", "box", "confidence"
(where scored)}], "object", "image_size", "model_version", "time", "tiling" (when tiled)}`, boxes in
original-image pixels. `PREFIX/status`
holds `online` while the publisher is connected and `offline` once it stops or is cut off (retained, the
broker's last will), so a subscriber can tell a quiet line from a dead one.

The client is paho-mqtt's: its network thread connects in the background, reconnects with a doubling delay
(1 s to 30 s), and keeps QoS 1 messages published while the broker is gone, up to `queue_limit`, sending
them when it is back. Inspection never waits for the broker. What the inspector should know (the broker is
gone, it is back, messages dropped because the queue is full) is collected as notes to read with `notes()`
from the inspector's own thread; paho's thread only appends to that queue. With a `LineJournal`, each message is
also kept on disk until the broker acknowledges it, and `start()` sends first what an earlier process left
unsent (a watcher killed while the broker was down loses nothing).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from lriad_desktop.core.inspection.finding import Finding
from lriad_desktop.core.line.journal import JournalError, LineJournal

log = logging.getLogger(__name__)

DEFAULT_PORT = 1883
DEFAULT_QUEUE_LIMIT = 10_000
QOS = 1


class PublishError(Exception):
    """The MQTT settings can't be used (a malformed broker address, a topic with wildcards)."""


@dataclass(frozen=True)
class Broker:
    """Where findings go: the broker's address and the topic prefix."""

    host: str
    port: int = DEFAULT_PORT
    topic: str = "lriad"

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def finding_topic(self) -> str:
        return f"{self.topic}/finding"

    @property
    def status_topic(self) -> str:
        return f"{self.topic}/status"


def parse_broker(address: str, topic: str = "lriad") -> Broker:
    """`HOST:PORT` (`HOST` alone: port 1883; `[::1]:1883` for IPv6) and a topic prefix; raises PublishError."""
    text = address.strip()
    if not text:
        raise PublishError("no MQTT broker given (HOST:PORT)")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, ""
    if not host or any(c.isspace() for c in host) or "/" in host:
        raise PublishError(f"'{address}' is not a broker address: use HOST:PORT, e.g. 127.0.0.1:1883")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise PublishError(f"'{address}': the port must be a number") from None
    if not 0 < port < 65536:
        raise PublishError(f"'{address}': the port must be 1 to 65535")
    prefix = topic.strip().strip("/")
    if not prefix or any(c in prefix for c in "#+\0"):
        raise PublishError(f"'{topic}' can't be a topic prefix: it must be non-empty, without # or +")
    return Broker(host, port, prefix)


def broker_problem(address: str) -> str:
    """Why `address` is not a broker address ("" when it is one, or empty: publishing is off)."""
    if not address.strip():
        return ""
    try:
        parse_broker(address)
    except PublishError as err:
        return str(err)
    return ""


def topic_problem(topic: str) -> str:
    """Why `topic` can't be a topic prefix ("" when it can)."""
    try:
        parse_broker("localhost", topic)
    except PublishError as err:
        return str(err)
    return ""


def finding_message(finding: Finding, image_path: str = "", at: str = "") -> dict[str, Any]:
    """The message published for one finding (`image_path`: where the image is now, if it was moved)."""
    data = finding.to_dict()
    message: dict[str, Any] = {
        "image": image_path or finding.image_path,
        "verdict": data["verdict"],
    }
    if data.get("anomaly_score") is not None:
        message["anomaly_score"] = data["anomaly_score"]
    message.update({
        "defects": [{k: v for k, v in d.items() if k != "confidence" or v is not None} for d in data["defects"]],
        "object": finding.object_name,
        "image_size": data["image_size"],
        "model_version": finding.model_version,
        "time": at or datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
    })
    if data.get("tiling"):
        message["tiling"] = data["tiling"]
    return message


class FindingPublisher:
    """Publishes findings to one broker; `start()` never blocks or fails on a broker that is down.

    `publish` may be called from any one thread; `notes()` returns what happened since the last call (for the
    inspector). `close()` sends what it can within `flush_s`, marks the status offline and disconnects.
    """

    def __init__(self, broker: Broker, queue_limit: int = DEFAULT_QUEUE_LIMIT, client_id: str = "",
                 journal: LineJournal | None = None) -> None:
        import paho.mqtt.client as mqtt

        self.broker = broker
        self.journal = journal
        self._rows: dict[int, int] = {}  # MQTT message id -> its row in the journal's outbox
        self.queue_limit = queue_limit
        self._notes: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._unacked: set[int] = set()
        self._acked_early: set[int] = set()
        self._status_mids: set[int] = set()
        self._connected = False
        self._gone_said = False
        self._ever_connected = False
        self._dropped = 0
        self.published = 0  # acknowledged by the broker
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                   client_id=client_id or f"lriad-{uuid.uuid4().hex[:12]}")
        self._client.max_queued_messages_set(queue_limit)
        self._client.max_inflight_messages_set(100)
        self._client.reconnect_delay_set(min_delay=1, max_delay=30)
        self._client.will_set(broker.status_topic, "offline", qos=QOS, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_publish = self._on_publish
        self._started = False

    # --- paho's thread ---------------------------------------------------------------------------------------
    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        if getattr(reason, "is_failure", False):
            self._gone(f"refused the connection ({reason})")
            return
        with self._lock:
            self._connected, waiting = True, len(self._unacked)
            was_gone, self._gone_said = self._gone_said, False
            first, self._ever_connected = not self._ever_connected, True
        status = client.publish(self.broker.status_topic, "online", qos=QOS, retain=True)
        with self._lock:  # its acknowledgement comes later on this same thread
            self._status_mids.add(status.mid)
        if first and not was_gone:
            self._notes.put(f"MQTT: connected to {self.broker.address}; findings go to {self.broker.finding_topic}")
        else:
            self._notes.put(f"MQTT: the broker at {self.broker.address} is back; sending {waiting} waiting "
                            f"finding(s)")

    def _on_disconnect(self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _props: Any = None) -> None:
        with self._lock:
            self._connected = False
        if getattr(reason, "value", 0) != 0:  # 0: our own disconnect
            self._gone("connection lost")

    def _on_connect_fail(self, _client: Any, _userdata: Any) -> None:
        self._gone("no answer")

    def _gone(self, why: str) -> None:
        with self._lock:
            self._connected = False
            if self._gone_said:
                return
            self._gone_said = True
            waiting = len(self._unacked)
        self._notes.put(f"MQTT: the broker at {self.broker.address} is gone ({why}); inspection goes on and "
                        f"findings wait for it ({waiting} now, up to {self.queue_limit}); retrying")

    def _on_publish(self, _client: Any, _userdata: Any, mid: int, _reason: Any = None, _props: Any = None) -> None:
        with self._lock:
            if mid in self._status_mids:
                self._status_mids.discard(mid)
            elif mid in self._unacked:
                self._unacked.discard(mid)
                self.published += 1
                self._sent(self._rows.pop(mid, None))
            else:  # acknowledged before `publish` had noted it (or the status message)
                self._acked_early.add(mid)

    def _sent(self, row: int | None) -> None:
        if row is None or self.journal is None:
            return
        try:
            self.journal.message_sent(row)
        except JournalError as err:  # sent twice at the next start, at worst
            self._notes.put(f"MQTT: {err}")

    # --- the caller's thread --------------------------------------------------------------------------------
    def start(self) -> "FindingPublisher":
        """Connect in the background (a broker that is down is retried; `notes()` says so); with a journal,
        what an earlier process left unsent goes first."""
        if not self._started:
            self._client.connect_async(self.broker.host, self.broker.port, keepalive=30)
            self._client.loop_start()
            self._started = True
            left = self.journal.unsent() if self.journal is not None else []
            for row, topic, payload in left:
                self._hand_over(topic, payload, row)
            if left:
                self._notes.put(f"MQTT: {len(left)} finding(s) an earlier watch could not deliver are sent first")
        return self

    def _hand_over(self, topic: str, payload: str, row: int | None) -> bool:
        """Give one message to paho; False when its queue is full (the row stays in the journal)."""
        import paho.mqtt.client as mqtt

        # not under self._lock: paho calls on_publish holding its own lock, which publish takes too
        info = self._client.publish(topic, payload, qos=QOS)
        with self._lock:
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self._dropped += 1
                return False
            if info.mid in self._acked_early:
                self._acked_early.discard(info.mid)
                self.published += 1
                self._sent(row)
            else:
                self._unacked.add(info.mid)
                if row is not None:
                    self._rows[info.mid] = row
        return True

    @property
    def connected(self) -> bool:
        with self._lock:
            return self._connected

    @property
    def waiting(self) -> int:
        """Findings published but not yet acknowledged by the broker."""
        with self._lock:
            return len(self._unacked)

    def publish(self, finding: Finding, image_path: str = "", at: str = "") -> bool:
        """Queue one finding's message (sent now, or when the broker is back); False when the queue is full."""
        payload = json.dumps(finding_message(finding, image_path, at), ensure_ascii=False)
        row = None
        if self.journal is not None:
            try:
                row = self.journal.add_message(self.broker.finding_topic, payload)
            except JournalError as err:
                self._notes.put(f"MQTT: {err}; this finding is sent while this watch runs only")
        if self._hand_over(self.broker.finding_topic, payload, row):
            return True
        with self._lock:
            dropped = self._dropped
        self._notes.put(f"MQTT: {self.queue_limit} findings are waiting for the broker; the finding for "
                        f"{image_path or finding.image_path} was not published ({dropped} so far; all are in the "
                        f"review store)")
        return False

    def notes(self) -> list[str]:
        """What happened since the last call, one line each."""
        out = []
        while True:
            try:
                out.append(self._notes.get_nowait())
            except queue.Empty:
                return out

    def close(self, flush_s: float = 2.0) -> int:
        """Send what can be sent within `flush_s`, mark offline, disconnect; returns the findings left unsent."""
        if not self._started:
            return 0
        deadline = time.monotonic() + flush_s
        while self.connected and self.waiting and time.monotonic() < deadline:
            time.sleep(0.05)
        left = self.waiting
        if self.connected:
            info = self._client.publish(self.broker.status_topic, "offline", qos=QOS, retain=True)
            try:
                info.wait_for_publish(timeout=max(0.1, deadline - time.monotonic()))
            except (RuntimeError, ValueError):  # not sent: the broker went meanwhile
                pass
        self._client.disconnect()
        self._client.loop_stop()
        self._started = False
        return left
