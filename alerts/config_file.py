"""Reading a YAML configuration file (district leads, alerting windows) into its pydantic model,
with every failure a user can cause told in one line, in English and Chinese."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def load_config(path: Path, model: type[M], error: type[Exception], name_zh: str) -> M:
    """`path` read and validated as `model`; a file that cannot be read, is not YAML or does not
    validate raises `error` with a message for the user (`name_zh` names the file in Chinese)."""
    try:
        return model.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror}) / 无法读取{name_zh}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML ({str(exc).splitlines()[0]}) / {name_zh}不是有效的 YAML") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise error(f"{path}: {where + ': ' if where else ''}{err['msg']} / {name_zh}有误") from None
