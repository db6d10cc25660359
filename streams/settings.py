"""Worker and client configuration: flags first, then JUNHENG_* environment variables, then defaults."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything a worker, a loader or the simulator needs to find the broker and each other."""

    model_config = SettingsConfigDict(env_prefix="JUNHENG_", extra="ignore")

    broker: str = Field("kafka://127.0.0.1:9092", description="Kafka bootstrap URL, kafka://host:port[;host:port]")
    app_id: str = Field("junheng", pattern=r"^[A-Za-z0-9._-]+$")
    topic: str = Field("junheng.events", pattern=r"^[A-Za-z0-9._-]+$")
    dead_letter_topic: str = Field("junheng.dead-letter", pattern=r"^[A-Za-z0-9._-]+$")
    partitions: int = Field(8, ge=1, le=1024)
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=1, le=65535)
    data_dir: Path = Path("var/junheng")
    store: Literal["memory", "rocksdb"] = "memory"
    rules: list[str] = ["national-2017"]
    as_of: dt.date | None = Field(None, description="date the rules are taken at (default: today)")
    school_series: Literal["all", "violations"] = "all"
    # Tansu answers ListOffsets(latest) with the last *batch*'s base offset + 1, so a changelog
    # written in multi-record batches is recovered only in part there; 1 makes every batch one
    # record. Leave unset (Faust's default) on Apache Kafka.
    producer_max_batch_size: int | None = Field(None, ge=1)
    # Tansu holds a group join for about half the session timeout; 2 s makes an embedded worker
    # ready in ~2.5 s. On a shared Apache Kafka cluster a longer timeout rides out GC pauses.
    session_timeout: float = Field(10.0, ge=1, le=300, description="consumer-group session timeout, seconds")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        if not value.startswith("kafka://") or not all(":" in h for h in value[len("kafka://"):].split(";")):
            raise ValueError("broker must look like kafka://host:port / 代理地址格式应为 kafka://主机:端口")
        return value

    @property
    def bootstrap_servers(self) -> list[str]:
        """The broker URL as host:port pairs, for kafka-python and aiokafka."""
        return self.broker[len("kafka://"):].split(";")
