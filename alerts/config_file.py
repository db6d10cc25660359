"""Reading a YAML or JSON configuration file (district leads, alerting windows, the generated
Grafana files) into its pydantic model, with every failure a user can cause told in one line, in
English and Chinese."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from schemas.loading import printable, yaml_problem

M = TypeVar("M", bound=BaseModel)


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that names a key twice. PyYAML keeps the last
    silently: a leads file listing a district twice sent its alerts to the second lead only,
    and the first lead, still in the file, was never told."""


class DuplicateKey(yaml.YAMLError):
    """A mapping naming `key` twice, at 1-based `line` and first at `first`."""

    def __init__(self, key, line: int, first: int):
        super().__init__(f"key {key!r} at line {line} appears twice (first at line {first})")
        self.key, self.line, self.first = key, line, first


def _unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    # Only the keys written in this mapping: one merged in by `<<` may be overridden, as YAML says.
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.setdefault(key, key_node)
        except TypeError:  # an unhashable key: construct_mapping reports it as PyYAML always has
            break
        if first is not key_node:
            raise DuplicateKey(key, key_node.start_mark.line + 1, first.start_mark.line + 1)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def _yaml(text: str):
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _unique_pairs(pairs: list[tuple]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:  # json keeps the last, as PyYAML does (see _UniqueKeyLoader)
            raise ValueError(f"key {key!r} appears twice in one object")
        seen[key] = value
    return seen


def _json(text: str):
    return json.loads(text, object_pairs_hook=_unique_pairs)


PARSERS = {"YAML": _yaml, "JSON": _json}


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
        raise error(f"{path}: {printable(str(exc))} / {name_zh}中键 {printable(repr(exc.key))} 出现了两次"
                    f"（第 {exc.line} 行，首次在第 {exc.first} 行）") from None
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
