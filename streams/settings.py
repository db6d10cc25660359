"""Worker and client configuration: flags first, then JUNHENG_* environment variables, then defaults."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from junheng.errors import UserError
from schemas.loading import printable
from streams.future import FUTURE_TOLERANCE
from streams.heap import TRIM_INTERVAL

ENV_PREFIX = "JUNHENG_"


class Settings(BaseSettings):
    """Everything a worker, a loader or the simulator needs to find the broker and each other."""

    # No NaN or infinity for any number: NaN passed `gt=0`, and was then told "should be ≤ 10".
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", allow_inf_nan=False)

    broker: str = Field("kafka://127.0.0.1:9092", description="Kafka bootstrap URL, kafka://host:port[;host:port]")
    app_id: str = Field("junheng", pattern=r"^[A-Za-z0-9._-]+$")
    topic: str = Field("junheng.events", pattern=r"^[A-Za-z0-9._-]+$")
    dead_letter_topic: str = Field("junheng.dead-letter", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(8, ge=1, le=1024)
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    data_dir: Path = Path("var/junheng")
    store: Literal["memory", "rocksdb"] = "memory"
    rules: list[str] = Field(["national-2017"], min_length=1)
    as_of: dt.date | None = Field(None, description="date the rules are taken at, fixed "
                                                    "(default: the day in China, followed as it turns)")
    school_series: Literal["all", "violations"] = "all"
    # Tansu answers ListOffsets(latest) with the last *batch*'s base offset + 1, so a changelog
    # written in multi-record batches is recovered only in part there; 1 makes every batch one
    # record. Leave unset (Faust's default) on Apache Kafka.
    producer_max_batch_size: int | None = Field(None, ge=1)
    # Tansu holds a group join for about half the session timeout; 2 s makes an embedded worker
    # ready in ~2.5 s. On a shared Apache Kafka cluster a longer timeout rides out GC pauses.
    session_timeout: float = Field(10.0, ge=1, le=300, description="consumer-group session timeout, seconds")
    # Changes are folded as they arrive and evaluated together at this interval (and before
    # every read of /report or /metrics): a school touched by 100 events is evaluated once.
    evaluate_interval: float = Field(0.2, gt=0, le=10, description="seconds between rule evaluations")
    # Faust asks for 1.5 s; Tansu holds a fetch for much of that wait even when records arrive
    # (streams/fetching.py). Apache Kafka answers as soon as records arrive whatever the wait.
    fetch_wait: float = Field(0.1, gt=0, le=10, description="longest a consumer fetch waits for records, seconds")
    # Prometheus gives up on a scrape after its timeout (10 s by default), while a worker's
    # national share takes about 15 s to render in full after most of its schools changed: a
    # scrape answers after this long at most rendering what changed (joining the text adds about
    # 0.4 s for a national share), and what is left keeps its previous lines meanwhile.
    scrape_budget: float = Field(0.25, ge=0, le=300,
                                 description="seconds a /metrics scrape renders changes before it answers")
    heap_trim_interval: float = Field(TRIM_INTERVAL, gt=0, le=3600,
                                      description="seconds between returns of freed memory to the OS")
    # The worker keeps its long-lived objects out of Python's collector between full collections
    # at this interval (streams/freezing.py); each full collection scans the whole state.
    full_collection_interval: float = Field(3600.0, gt=0, le=7 * 24 * 3600,
                                            description="seconds between full garbage collections")
    # A changelog write (and its dead letters) the broker has not acknowledged by then fails,
    # and the worker stops (streams/writer.py) for its replacement to read the records again.
    # Faust's 20 minutes rides out a broker's restart; a supervisor that restarts a stopped
    # worker can take a shorter wait.
    write_timeout: float = Field(1200.0, ge=1, le=24 * 3600,
                                 description="seconds the broker gets to acknowledge a write before the worker stops")
    # An event dated further ahead of the worker's clock than this (a school system's wrong clock,
    # a year typed wrong), or a snapshot whose as_of day ends further ahead, is dead-lettered
    # (streams/future.py). A day by default: school systems' clocks and time zones differ by
    # hours, not days. At most 366 days: a longer one would let through the wrong years it is
    # there to catch.
    future_tolerance: float = Field(FUTURE_TOLERANCE, gt=0, le=366 * 24 * 3600,
                                    description="seconds an event's time may be ahead of the worker's clock")
    broker_wait: float = Field(30.0, gt=0, le=3600, description="seconds to wait for the broker to answer at start")
    send_timeout: float = Field(30.0, ge=1, le=3600,
                                description="seconds the broker gets to acknowledge an event `load` or `simulate` sent")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Kafka security (streams/security.py turns these into client settings). The password is a
    # SecretStr, so repr(settings) and logs show it as '**********'; prefer the file form.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_check_hostname: bool = True

    @field_validator("log_level", mode="before")
    @classmethod
    def _any_case(cls, value):
        # Logging's own names are upper case: JUNHENG_LOG_LEVEL=DEBUG was refused.
        return value.lower() if isinstance(value, str) else value

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        # Checked whole here: a port that is not a number passed, and the command waited for
        # the broker for 30 s before the client's int() failed.
        if not value.startswith("kafka://") or not all(map(_host_port, value[len("kafka://"):].split(";"))):
            raise ValueError("broker must look like kafka://host:port / 代理地址格式应为 kafka://主机:端口")
        return value

    @model_validator(mode="after")
    def _kafka_security(self) -> "Settings":
        from streams.security import check_settings

        check_settings(self)
        return self

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker URL as host:port pairs, for kafka-python and aiokafka."""
        return self.broker[len("kafka://"):].split(";")


def _host_port(address: str) -> bool:
    """Whether `address` is host:port with a port from 1 to 65535 (an IPv6 host in brackets)."""
    host, _, port = address.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]") and len(host) > 2
    plain = host and "[" not in host and "]" not in host and ":" not in host
    return (bool(bracketed or plain) and not any(ch.isspace() for ch in host)
            and port.isascii() and port.isdigit() and 1 <= int(port) <= 65535)


def env_name(field: str) -> str:
    """The environment variable of a setting."""
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(flags: Mapping[str, Any] | None = None, **given: Any) -> Settings:
    """Settings from command-line flags (by field name) and values a command fixes itself, over
    JUNHENG_* environment variables and defaults. A bad value raises UserError naming the flag or
    variable it came from, with what it should be, in English and Chinese."""
    flags = dict(flags or {})
    try:
        return Settings(**{**flags, **given})
    except ValidationError as exc:
        raise UserError(_invalid(exc.errors()[0], flags)) from None
    except SettingsError as exc:  # a JSON-valued variable that is not JSON (JUNHENG_RULES)
        raise UserError(_unparsed(str(exc))) from None


#: What a value should be, in Chinese, by pydantic error type (the English is pydantic's own).
_SHOULD_ZH = {
    "greater_than": "应大于 {gt}", "greater_than_equal": "应不小于 {ge}",
    "less_than": "应小于 {lt}", "less_than_equal": "应不大于 {le}",
    "int_parsing": "应为整数", "int_type": "应为整数", "int_from_float": "应为整数",
    "float_parsing": "应为数字", "float_type": "应为数字", "finite_number": "应为有限数值",
    "bool_parsing": "应为 true 或 false", "bool_type": "应为 true 或 false",
    "literal_error": "应为以下之一：{expected}",
    "too_short": "应至少有 {min_length} 项",
    "string_pattern_mismatch": "格式应符合 {pattern}",
    "date_parsing": "应为日期 YYYY-MM-DD", "date_from_datetime_parsing": "应为日期 YYYY-MM-DD",
    "date_from_datetime_inexact": "应为日期 YYYY-MM-DD", "date_type": "应为日期 YYYY-MM-DD",
}
_SECRET = {"kafka_sasl_password"}


def _invalid(error: Mapping[str, Any], flags: Mapping[str, Any]) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:  # a check across fields (Kafka security): its message names the variables
        return message
    field = str(error["loc"][0])
    value = "" if field in _SECRET else printable(repr(error.get("input")))[:80]
    if field in flags:
        source, kind_zh = f"--{field.replace('_', '-')}", "参数"
        given = f"{source} {value}".rstrip()
    else:
        source, kind_zh = env_name(field), "环境变量"
        given = f"{source}={value}" if value else source
    if error["type"] == "value_error":  # our own validators' messages are already bilingual
        return f"{given}: {message}"
    context = {k: _plain(v) for k, v in error.get("ctx", {}).items()}
    return f"{given}: {message} / {kind_zh} {source} {_SHOULD_ZH.get(error['type'], '取值无效').format(**context)}"


def _plain(value: Any) -> Any:
    """A limit as people write it: 0, not 0.0; pydantic's "'a' or 'b'" as 'a' 或 'b'."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value.replace(" or ", " 或 ") if isinstance(value, str) else value


def _unparsed(text: str) -> str:
    found = re.search(r'field "(\w+)"', text)
    field = found.group(1) if found else "?"
    value = os.environ.get(env_name(field), "")
    return (f"{env_name(field)}={printable(repr(value))[:80]}: not valid JSON; a list is written like "
            f'["national-2017"] / 环境变量 {env_name(field)} 应为 JSON，例如 ["national-2017"]')
