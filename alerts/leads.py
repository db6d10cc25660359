"""The district-leads directory: who receives each district's alerts, and how.

Secrets never appear here: the SMTP password and any webhook credentials are files named by
path, mounted at deploy time (compose secrets, Kubernetes secrets).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from alerts.config_file import load_config
from schemas.booleans import Boolean
from schemas.snapshot import Identifier


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Webhook(_Strict):
    """A webhook receiver. A WeCom (企业微信) group bot is reached through a relay inside the
    deployment, because its URL carries its key and this Alertmanager (0.25) cannot read a
    webhook URL from a file; the relay holds the key, Alertmanager authenticates to it with a
    bearer token read from `credentials_file`."""

    url: Annotated[str, Field(pattern=r"^https?://")]
    credentials_file: str | None = None


class Contact(_Strict):
    name: str
    email: str | None = None
    webhook: Webhook | None = None

    @model_validator(mode="after")
    def _reachable(self) -> "Contact":
        if self.email is None and self.webhook is None:
            raise ValueError(f"{self.name}: give an email or a webhook / 请至少提供邮箱或 webhook")
        return self


class Lead(Contact):
    """A district's lead (负责人) and the district's name."""

    district_name: str


class Smtp(_Strict):
    smarthost: str
    sender: str = Field(alias="from")
    username: str | None = None
    password_file: str | None = None
    # Strict: a quoted `"no"` or `"false"` (text to YAML) read as pydantic's lax false turned TLS
    # off, and a quoted `"yes"` read as true hid the slip; YAML's own booleans, `no` and `false`
    # unquoted among them, are booleans before pydantic sees them and are taken.
    require_tls: Boolean = True


class Leads(_Strict):
    smtp: Smtp | None = None
    operators: Contact | None = None
    # Keyed by district id as snapshots spell it (contracts.md §1): what no snapshot can name
    # (empty, a line break, a control character) could only ever route nothing.
    districts: dict[Identifier, Lead]

    @model_validator(mode="after")
    def _email_needs_smtp(self) -> "Leads":
        emails = [c for c in (self.operators, *self.districts.values()) if c is not None and c.email]
        if emails and self.smtp is None:
            raise ValueError("email contacts need an smtp section / 使用邮件通知需要配置 smtp")
        return self


class LeadsError(Exception):
    """A leads file that cannot be read or does not validate; the message is for the user."""


def load_leads(path: Path) -> Leads:
    """Read and validate a leads directory file."""
    return load_config(path, Leads, LeadsError, "负责人名录")
