"""Kafka security settings: one translation for every client, half-configured setups rejected with a
clear message, and the SASL password in no repr, log line, /metrics or /report."""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from streams import security
from streams.settings import Settings

SECRET = "s3cr3t-Pa55-不要泄露"
HERE = Path(__file__).parent


@pytest.fixture
def password_file(tmp_path) -> Path:
    path = tmp_path / "kafka-password"
    path.write_text(SECRET + "\n", encoding="utf-8")
    return path


@pytest.fixture
def ca_file(tmp_path) -> Path:
    """A real CA certificate (the system's first) so that an SSL context can load it."""
    bundle = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    text = bundle.read_text(encoding="utf-8")
    first = text[: text.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    path = tmp_path / "ca.pem"
    path.write_text(first[first.index("-----BEGIN CERTIFICATE-----"):] + "\n", encoding="utf-8")
    return path


def sasl(password_file, **extra) -> Settings:
    return Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
                    kafka_sasl_username="junheng", kafka_sasl_password_file=password_file, **extra)


def test_plaintext_is_the_default_and_adds_nothing():
    settings = Settings()
    assert security.kafka_python_config(settings) == {"security_protocol": "PLAINTEXT"}
    assert security.faust_credentials(settings) is None and security.ssl_context(settings) is None


def test_sasl_ssl_with_a_password_file_reaches_every_client_alike(password_file, ca_file):
    settings = sasl(password_file, kafka_ssl_cafile=ca_file)
    for config in (security.kafka_python_config(settings), security.aiokafka_config(settings)):
        assert config["security_protocol"] == "SASL_SSL" and config["sasl_mechanism"] == "SCRAM-SHA-512"
        assert config["sasl_plain_username"] == "junheng" and config["sasl_plain_password"] == SECRET
        assert isinstance(config["ssl_context"], ssl.SSLContext)
        assert config["ssl_context"].verify_mode == ssl.CERT_REQUIRED and config["ssl_context"].check_hostname
    # What Faust hands to aiokafka, through Faust's own translation.
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    auth = credentials_to_aiokafka_auth(security.faust_credentials(settings))
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_mechanism"] == "SCRAM-SHA-512"
    assert auth["sasl_plain_username"] == "junheng" and auth["sasl_plain_password"] == SECRET
    assert isinstance(auth["ssl_context"], ssl.SSLContext)


def test_the_kafka_python_clients_accept_the_translation(password_file, ca_file):
    from kafka import KafkaAdminClient, KafkaProducer

    config = security.kafka_python_config(sasl(password_file, kafka_ssl_cafile=ca_file))
    unknown = set(config) - set(KafkaProducer.DEFAULT_CONFIG) | set(config) - set(KafkaAdminClient.DEFAULT_CONFIG)
    assert not unknown


def test_scram_sha_256_over_plaintext_and_tls_without_sasl(password_file, ca_file):
    plain = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-256",
                     kafka_sasl_username="u", kafka_sasl_password=SECRET)
    config = security.kafka_python_config(plain)
    assert config["sasl_mechanism"] == "SCRAM-SHA-256" and config["sasl_plain_password"] == SECRET
    assert "ssl_context" not in config
    auth = security.faust_credentials(plain)
    assert auth.protocol.value == "SASL_PLAINTEXT" and auth.mechanism.value == "SCRAM-SHA-256"
    tls = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca_file, kafka_ssl_check_hostname=False)
    assert security.faust_credentials(tls).protocol.value == "SSL"
    assert security.kafka_python_config(tls)["ssl_context"].check_hostname is False


@pytest.mark.parametrize("given, message", [
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u", "kafka_sasl_password": "p"},
     "needs JUNHENG_KAFKA_SASL_MECHANISM"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-256", "kafka_sasl_password": "p"},
     "needs JUNHENG_KAFKA_SASL_USERNAME"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-256", "kafka_sasl_username": "u"},
     "needs a password"),
    ({"kafka_sasl_username": "u", "kafka_sasl_password": "p", "kafka_sasl_mechanism": "SCRAM-SHA-256"},
     "JUNHENG_KAFKA_SECURITY_PROTOCOL is PLAINTEXT"),
    ({"kafka_ssl_cafile": "/etc/hostname"}, "use SSL or SASL_SSL"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": "/etc/hostname"}, "needs JUNHENG_KAFKA_SSL_CERTFILE"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/nonexistent/ca.pem"}, "cannot be read"),
    # Each of these was a traceback from the first client built (ssl.SSLError, IsADirectoryError).
    ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/etc"}, "JUNHENG_KAFKA_SSL_CAFILE: /etc cannot be read"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/etc/hostname"}, "holds no usable CA certificate"),
    ({"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/etc/hostname"}, "no usable client certificate"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "PLAIN", "kafka_sasl_username": "u",
      "kafka_sasl_password": "p"}, "SCRAM-SHA-256"),
])
def test_half_configured_security_is_rejected_with_a_clear_message(given, message):
    with pytest.raises(ValueError, match=message):
        Settings(**given)


def test_both_password_forms_or_an_empty_file_are_rejected(password_file, tmp_path):
    with pytest.raises(ValueError, match="not both"):
        sasl(password_file, kafka_sasl_password="p")
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty"):
        sasl(empty)
    gbk = tmp_path / "gbk"
    gbk.write_bytes("密码".encode("gbk"))
    with pytest.raises(ValueError, match="JUNHENG_KAFKA_SASL_PASSWORD_FILE: .* is not UTF-8 text"):
        sasl(gbk)
    with pytest.raises(ValueError, match="JUNHENG_KAFKA_SASL_PASSWORD_FILE: .* cannot be read"):
        sasl(tmp_path)


def test_settings_come_from_the_environment(monkeypatch, password_file):
    monkeypatch.setenv("JUNHENG_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("JUNHENG_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("JUNHENG_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("JUNHENG_KAFKA_SASL_PASSWORD", SECRET)
    settings = Settings()
    assert security.sasl_password(settings) == SECRET and settings.kafka_sasl_username == "svc"
    # A child worker gets the secret itself, not pydantic's mask.
    assert security.settings_env(settings)["JUNHENG_KAFKA_SASL_PASSWORD"] == SECRET


def test_the_password_is_in_no_repr_dump_or_credentials_repr(password_file):
    direct = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256",
                      kafka_sasl_username="u", kafka_sasl_password=SECRET)
    for settings in (direct, sasl(password_file)):
        assert SECRET not in repr(settings) and SECRET not in str(settings)
        assert SECRET not in settings.model_dump_json() and SECRET not in repr(settings.model_dump())
        assert SECRET not in repr(security.faust_credentials(settings))


def test_the_password_is_not_in_metrics_report_or_logs_of_a_built_app(password_file, caplog):
    from alerts.metrics import ReportCollector
    from streams.app import create_app

    settings = sasl(password_file, broker="kafka://127.0.0.1:9", as_of=dt.date(2024, 9, 1))
    with caplog.at_level(logging.DEBUG):
        app = create_app(settings)
        pipeline = app.junheng_pipeline
        registry = CollectorRegistry()
        registry.register(ReportCollector(_Source(pipeline)))
        metrics = generate_latest(registry).decode()
        report = pipeline.live.report().model_dump_json()
    assert "junheng_broker_stalled 0.0" in metrics
    assert SECRET not in metrics and SECRET not in report and SECRET not in caplog.text
    assert SECRET not in repr(app.conf.broker_credentials)


class _Source:
    def __init__(self, pipeline):
        self.pipeline = pipeline

    def reports(self):
        return [self.pipeline.live.report()]

    def health(self):
        return self.pipeline.health


def test_a_worker_that_cannot_authenticate_says_so_without_the_password(tmp_path):
    """A SASL worker against a broker that speaks no SASL (Tansu): a one-line error, exit 2, and
    the password in neither its output nor its log, even at debug level."""
    from streams.broker import EmbeddedBroker

    password = tmp_path / "pw"
    password.write_text(SECRET, encoding="utf-8")
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        env = {"JUNHENG_BROKER": broker.url, "JUNHENG_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
               "JUNHENG_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256", "JUNHENG_KAFKA_SASL_USERNAME": "junheng",
               "JUNHENG_KAFKA_SASL_PASSWORD_FILE": str(password), "JUNHENG_LOG_LEVEL": "debug",
               "JUNHENG_DATA_DIR": str(tmp_path / "data"), "JUNHENG_BROKER_WAIT": "5", "PATH": "/usr/bin:/bin"}
        run = subprocess.run([sys.executable, "-m", "junheng", "worker"], capture_output=True, text=True,
                             timeout=120, env=env, cwd=HERE.parent)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "no Kafka broker answers" in run.stderr and "无法连接" in run.stderr
    assert SECRET not in run.stdout + run.stderr


def test_half_configured_security_on_the_command_line_is_one_line_exit_2():
    run = subprocess.run([sys.executable, "-m", "junheng", "load", str(HERE.parent / "deploy/examples/rural-county.json")],
                         capture_output=True, text=True, timeout=60, cwd=HERE.parent,
                         env={"JUNHENG_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "JUNHENG_KAFKA_SASL_MECHANISM" in run.stderr and "SASL" in run.stderr
