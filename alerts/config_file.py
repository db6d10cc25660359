"""Reading a YAML or JSON configuration file (district leads, alerting windows, the generated
Grafana files) into its pydantic model, with every failure a user can cause told in one line, in
English and Chinese."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from schemas.loading import DuplicateKey, load_json, load_yaml, printable, yaml_problem

M = TypeVar("M", bound=BaseModel)


PARSERS = {"YAML": load_yaml, "JSON": load_json}


def load_config(path: Path, model: type[M], error: type[Exception], name_zh: str, syntax: str = "YAML") -> M:
    """`path` read as `syntax` (YAML or JSON) and validated as `model`; a file that cannot be
    read, does not parse or does not validate raises `error` with a message for the user
    (`name_zh` names the file in Chinese)."""
    document = _parse(Path(path), error, name_zh, syntax)
    if document is None:
        raise error(f"{path}: empty / {name_zh}为空")
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise error(f"{path}: {_first_error(exc)} / {name_zh}有误") from None


def _parse(path: Path, error: type[Exception], name_zh: str, syntax: str):
    try:
        return PARSERS[syntax](path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror}) / 无法读取{name_zh}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}) / {name_zh}不是 UTF-8 文本") from None
    except RecursionError:
        raise error(f"{path}: not valid {syntax} (nested too deeply) / {name_zh}不是有效的 {syntax}") from None
    except DuplicateKey as exc:
        raise error(f"{path}: {printable(str(exc))} / {name_zh}中{exc.chinese()}") from None
    except yaml.YAMLError as exc:
        english, chinese = yaml_problem(exc)
        raise error(f"{path}: not valid YAML {english} / {name_zh}不是有效的 YAML{chinese}") from None
    except ValueError as exc:  # JSON's syntax errors, a number of thousands of digits
        raise error(f"{path}: not valid {syntax} ({str(exc).splitlines()[0]}) / {name_zh}不是有效的 {syntax}") from None


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    # A model's type error names its Python class, which means nothing to whoever wrote the file.
    message = "Input should be a valid dictionary" if err["type"] == "model_type" else err["msg"]
    # The place names keys from the file, which may hold a line break: keep the message one line.
    return printable(f"{where + ': ' if where else ''}{message}")
