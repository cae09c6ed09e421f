"""A real MQTT broker for tests: Debian's mosquitto on a free loopback port with a temporary config, and a
subscriber (paho-mqtt) that collects what reaches it."""

from __future__ import annotations

import getpass
import json
import queue
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A mosquitto process listening on 127.0.0.1:`port`; `stop()` and `start()` again on the same port."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.folder = folder
        self.port = port or free_port()
        self.config = folder / "mosquitto.conf"
        # `user`: run as root, mosquitto would drop to the mosquitto user, who can't write this folder
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
                               f"persistence true\npersistence_location {folder}/\n"
                               f"log_dest file {folder / 'mosquitto.log'}\n")
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        """'' once the broker takes connections; else why it did not."""
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else "")
        if not binary:
            return "mosquitto is not installed (apt-get install mosquitto)"
        self.process = subprocess.Popen([binary, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                return f"mosquitto exited with {self.process.returncode}: {err[-300:]}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return ""
            except OSError:
                time.sleep(0.05)
        return f"mosquitto did not listen on {self.port} within {timeout:.0f} s"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def start_broker(folder: Path) -> Mosquitto:
    """A running broker, or the test is skipped with the reason it can't start."""
    broker = Mosquitto(folder)
    problem = broker.start()
    if problem:
        broker.stop()
        pytest.skip(f"no MQTT broker for this test: {problem}")
    return broker


class Subscriber:
    """A paho-mqtt client subscribed to `topic` (QoS 1), collecting (topic, payload) pairs.

    Its session is persistent (and so is the broker's store): across a broker restart, messages published
    before it is back in are kept for it.
    """

    def __init__(self, port: int, topic: str) -> None:
        import uuid

        import paho.mqtt.client as mqtt

        self.messages: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._subscribed = queue.SimpleQueue()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"lriad-test-{uuid.uuid4().hex[:8]}",
                                  clean_session=False)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.put(True)
        self.client.on_message = lambda _c, _u, msg: self.messages.put((msg.topic, msg.payload))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self._subscribed.get(timeout=10)

    def take(self, n: int, timeout: float = 15.0, topic_suffix: str = "/finding") -> list[dict]:
        """The next `n` JSON payloads on topics ending in `topic_suffix` (fails the test after `timeout`)."""
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        while len(got) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"only {len(got)} of {n} MQTT messages arrived within {timeout:.0f} s: {got}")
            try:
                topic, payload = self.messages.get(timeout=left)
            except queue.Empty:
                continue
            if topic.endswith(topic_suffix):
                got.append(json.loads(payload))
        return got

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
