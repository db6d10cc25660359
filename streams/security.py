"""Kafka security settings (TLS, SASL/SCRAM) translated once for every client junheng uses.

One place decides what `JUNHENG_KAFKA_*` means, so the Faust worker (aiokafka underneath), the
kafka-python producer and admin client (`junheng load`, `junheng simulate`, topic declaration)
and the stall probe (aiokafka) always connect the same way. The SASL password is read from its
file when a client is built, never stored in a plain attribute of the settings, and never logged.
"""

from __future__ import annotations

import json
import os
import ssl
from typing import TYPE_CHECKING, Any

from streams.settings import env_name

if TYPE_CHECKING:
    from streams.settings import Settings

SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
TLS_PROTOCOLS = ("SSL", "SASL_SSL")


def check_settings(settings: "Settings") -> None:
    """Reject a half-configured security setup with a message naming what is missing.

    Raises ValueError (pydantic turns it into a validation error of the settings)."""
    protocol = settings.kafka_security_protocol
    sasl_given = [name for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password",
                                    "kafka_sasl_password_file") if getattr(settings, name) is not None]
    tls_given = [name for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
                 if getattr(settings, name) is not None]
    if protocol not in SASL_PROTOCOLS and sasl_given:
        raise ValueError(f"{env_name(sasl_given[0])} is set but JUNHENG_KAFKA_SECURITY_PROTOCOL is {protocol}; "
                         f"use SASL_SSL (or SASL_PLAINTEXT) / 已配置 SASL 参数，但安全协议不是 SASL_SSL 或 SASL_PLAINTEXT")
    if protocol not in TLS_PROTOCOLS and tls_given:
        raise ValueError(f"{env_name(tls_given[0])} is set but JUNHENG_KAFKA_SECURITY_PROTOCOL is {protocol}; "
                         f"use SSL or SASL_SSL / 已配置 TLS 文件，但安全协议不是 SSL 或 SASL_SSL")
    if protocol in SASL_PROTOCOLS:
        _check_sasl(settings)
    if settings.kafka_ssl_keyfile is not None and settings.kafka_ssl_certfile is None:
        raise ValueError("JUNHENG_KAFKA_SSL_KEYFILE needs JUNHENG_KAFKA_SSL_CERTFILE (the client certificate) "
                         "/ 提供了客户端私钥，但缺少客户端证书")
    for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile", "kafka_sasl_password_file"):
        path = getattr(settings, name)
        if path is not None and not (os.path.isfile(path) and os.access(path, os.R_OK)):
            raise ValueError(f"{env_name(name)}: {path} cannot be read (not a readable file) / 无法读取文件 {path}")
    if protocol in TLS_PROTOCOLS:
        _check_tls_files(settings)


def _check_sasl(settings: "Settings") -> None:
    missing = [name for name in ("kafka_sasl_mechanism", "kafka_sasl_username") if getattr(settings, name) is None]
    if missing:
        raise ValueError(f"{settings.kafka_security_protocol} needs {' and '.join(map(env_name, missing))} "
                         f"(SCRAM-SHA-256 or SCRAM-SHA-512) / SASL 认证缺少机制或用户名")
    given = [settings.kafka_sasl_password is not None, settings.kafka_sasl_password_file is not None]
    if all(given):
        raise ValueError("set JUNHENG_KAFKA_SASL_PASSWORD_FILE or JUNHENG_KAFKA_SASL_PASSWORD, not both "
                         "/ 密码文件与密码只能设置其一")
    if not any(given):
        raise ValueError(f"{settings.kafka_security_protocol} needs a password: JUNHENG_KAFKA_SASL_PASSWORD_FILE "
                         f"(preferred) or JUNHENG_KAFKA_SASL_PASSWORD / SASL 认证缺少密码")
    path = settings.kafka_sasl_password_file
    if path is None or not (os.path.isfile(path) and os.access(path, os.R_OK)):
        return  # refused in check_settings, with the other files
    try:
        password = _read_password(path)
    except UnicodeDecodeError:
        raise ValueError(f"JUNHENG_KAFKA_SASL_PASSWORD_FILE: {path} is not UTF-8 text / 密码文件不是 UTF-8 文本") from None
    if not password:
        raise ValueError(f"JUNHENG_KAFKA_SASL_PASSWORD_FILE: {path} is empty / 密码文件为空")


def _check_tls_files(settings: "Settings") -> None:
    # Loaded now, so that a file that is not PEM stops the command before it connects, in one
    # line naming the setting, not as an ssl.SSLError traceback from deep in a client.
    try:
        ssl.create_default_context(cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    except (ssl.SSLError, OSError) as exc:
        raise ValueError(f"JUNHENG_KAFKA_SSL_CAFILE: {settings.kafka_ssl_cafile} holds no usable CA certificate "
                         f"({exc.__class__.__name__}: {exc.strerror or exc}) / CA 证书文件无效") from None
    if settings.kafka_ssl_certfile is not None:
        try:
            ssl.create_default_context().load_cert_chain(
                str(settings.kafka_ssl_certfile), str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None)
        except (ssl.SSLError, OSError) as exc:
            raise ValueError(f"JUNHENG_KAFKA_SSL_CERTFILE / JUNHENG_KAFKA_SSL_KEYFILE: no usable client certificate "
                             f"and key ({exc.__class__.__name__}: {exc.strerror or exc}) / 客户端证书或私钥无效") from None


def sasl_password(settings: "Settings") -> str | None:
    """The SASL password, from its file (read now, so a rotated file is picked up on restart) or
    from the secret setting; None without SASL."""
    if settings.kafka_security_protocol not in SASL_PROTOCOLS:
        return None
    if settings.kafka_sasl_password_file is not None:
        return _read_password(settings.kafka_sasl_password_file)
    return settings.kafka_sasl_password.get_secret_value()


def ssl_context(settings: "Settings") -> ssl.SSLContext | None:
    """The TLS context of SSL and SASL_SSL (system CAs unless a CA file is given, plus the client
    certificate when one is); None for the plaintext protocols."""
    if settings.kafka_security_protocol not in TLS_PROTOCOLS:
        return None
    context = ssl.create_default_context(cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None)
    if settings.kafka_ssl_certfile is not None:
        context.load_cert_chain(str(settings.kafka_ssl_certfile),
                                str(settings.kafka_ssl_keyfile) if settings.kafka_ssl_keyfile else None)
    context.check_hostname = settings.kafka_ssl_check_hostname
    return context


def faust_credentials(settings: "Settings"):
    """`broker_credentials` for the Faust app, or None for PLAINTEXT."""
    import faust

    protocol = settings.kafka_security_protocol
    if protocol in SASL_PROTOCOLS:
        credentials = faust.SASLCredentials(username=settings.kafka_sasl_username, password=sasl_password(settings),
                                            ssl_context=ssl_context(settings), mechanism=settings.kafka_sasl_mechanism)
        return credentials
    if protocol == "SSL":
        return faust.SSLCredentials(ssl_context(settings))
    return None


def kafka_python_config(settings: "Settings") -> dict[str, Any]:
    """Keyword arguments for kafka-python's KafkaProducer and KafkaAdminClient."""
    return _client_config(settings)


def aiokafka_config(settings: "Settings") -> dict[str, Any]:
    """Keyword arguments for aiokafka's clients (the same names as kafka-python's)."""
    return _client_config(settings)


def _client_config(settings: "Settings") -> dict[str, Any]:
    protocol = settings.kafka_security_protocol
    config: dict[str, Any] = {"security_protocol": protocol}
    if protocol in TLS_PROTOCOLS:
        config["ssl_context"] = ssl_context(settings)
    if protocol in SASL_PROTOCOLS:
        config.update(sasl_mechanism=settings.kafka_sasl_mechanism, sasl_plain_username=settings.kafka_sasl_username,
                      sasl_plain_password=sasl_password(settings))
    return config


def settings_env(settings: "Settings") -> dict[str, str]:
    """The settings as JUNHENG_* variables for a child process. A password given as a secret is
    passed as itself (a plain dump would pass '**********'); a password file is passed as its path."""
    env = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        env[f"JUNHENG_{name.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
    if settings.kafka_sasl_password is not None:
        env["JUNHENG_KAFKA_SASL_PASSWORD"] = settings.kafka_sasl_password.get_secret_value()
    return env


def _read_password(path) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read().strip()
