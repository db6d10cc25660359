"""Reading a snapshot file, with errors a person can act on."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pydantic import ValidationError

from schemas.snapshot import Snapshot

MAX_BYTES = 512 * 1024 * 1024


class SnapshotError(Exception):
    """A snapshot that cannot be read or does not validate; the message names the place."""


def load_snapshot(path: str | Path) -> Snapshot:
    """Read and validate a JSON or YAML snapshot file."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise SnapshotError(f"{path}: larger than {MAX_BYTES >> 20} MiB / 快照文件过大")
        # utf-8-sig: Windows Notepad starts its UTF-8 files with a byte-order mark.
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SnapshotError(f"{path}: no such file / 找不到快照文件") from None
    except IsADirectoryError:
        raise SnapshotError(f"{path}: is a directory, not a snapshot file / 这是目录，不是快照文件") from None
    except UnicodeDecodeError:
        raise SnapshotError(f"{path}: not UTF-8 text / 快照文件不是 UTF-8 文本") from None
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot be read ({exc.strerror}) / 无法读取快照文件") from None
    return parse_snapshot(text, str(path), yaml_ok=path.suffix.lower() in (".yaml", ".yml"))


def parse_snapshot(text: str, where: str = "snapshot", yaml_ok: bool = False) -> Snapshot:
    """Parse and validate snapshot text (JSON, or YAML when `yaml_ok`)."""
    syntax = "YAML" if yaml_ok else "JSON"
    try:
        data = load_yaml(text) if yaml_ok else load_json(text) if text.strip() else None
    except RecursionError:
        raise SnapshotError(f"{where}: not valid {syntax} (nested too deeply) / 快照不是有效的 {syntax}") from None
    except DuplicateKey as exc:
        raise SnapshotError(f"{where}: {printable(str(exc))} / 快照中{exc.chinese()}") from None
    except yaml.YAMLError as exc:
        english, chinese = yaml_problem(exc)
        raise SnapshotError(f"{where}: not valid YAML {english} / 快照不是有效的 YAML{chinese}") from None
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"{where}: not valid JSON ({exc}) / 快照不是有效的 JSON") from None
    except ValueError:  # Python refuses to read an integer of more than 4,300 digits
        raise SnapshotError(f"{where}: a number too long to read / 快照中有位数过多的数字") from None
    if data is None:  # a blank file, or YAML of comments only (which YAML reads as null)
        raise SnapshotError(f"{where}: empty, no snapshot in it / 快照文件为空")
    try:
        return Snapshot.model_validate(data)
    except ValidationError as exc:
        raise SnapshotError(f"{where}: {describe(exc)}") from None


def describe(exc: ValidationError, what_zh: str = "快照校验失败") -> str:
    """The first validation error as 'path: message', plus how many more there are."""
    errors = exc.errors()
    first = errors[0]
    path = ".".join(str(p) for p in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "string_type" and isinstance(first.get("input"), (int, float)) and not isinstance(first["input"], bool):
        # A district code written bare in YAML (id: 320571) is read as a number; "Input should be
        # a valid string" did not say what to do. The value read is not echoed: YAML reads 0320571
        # as octal.
        message += " (a number where text is expected: put it in quotes, \"320571\" / 此处应为文本，请给数字加引号)"
    more = f" (and {len(errors) - 1} more / 另有 {len(errors) - 1} 处错误)" if len(errors) > 1 else ""
    # Keys and values in a path come from the input: escape what a terminal or a Kafka header
    # would not show as one line (newlines, bidi overrides, other control characters).
    return printable(f"{path + ': ' if path else ''}{message}{more} / {what_zh}")


class DuplicateKey(ValueError):
    """A mapping naming `key` twice: at 1-based `line`, first at `first` (YAML), or in one JSON
    object (no lines: json's hook is not told where)."""

    def __init__(self, key, line: int | None = None, first: int | None = None):
        where = f" at line {line} appears twice (first at line {first})" if line else " appears twice in one object"
        super().__init__(f"key {key!r}{where}")
        self.key, self.line, self.first = key, line, first

    def chinese(self) -> str:
        """The same in Chinese, after the name of the file's kind ("快照中" + this)."""
        where = f"（第 {self.line} 行，首次在第 {self.first} 行）" if self.line else "（同一对象中）"
        return f"键 {printable(repr(self.key))} 出现了两次{where}"


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a mapping that names a key twice. PyYAML keeps the last
    silently: a leads file listing a district twice sent its alerts to the second lead only, and
    a snapshot or a rule pack with a figure written twice kept the second without a word."""


def _unique_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
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


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def load_yaml(text: str):
    """YAML text as data, refusing a key written twice in one mapping (DuplicateKey)."""
    return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def _unique_pairs(pairs: list[tuple]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:  # json keeps the last, as PyYAML does
            raise DuplicateKey(key)
        seen[key] = value
    return seen


def load_json(text: str):
    """JSON text as data, refusing a key written twice in one object (DuplicateKey)."""
    return json.loads(text, object_pairs_hook=_unique_pairs)


def printable(text: str) -> str:
    """`text` with every non-printable character escaped, so it stays one visible line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """Where and what PyYAML found, on one line (its own text spans five to eight): the English
    part, and the position in Chinese ("" when PyYAML names none). Shared by every YAML file a
    user writes: snapshots, rule packs, district leads, alerting windows."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    if mark is not None and problem:
        line, column = mark.line + 1, mark.column + 1
        return printable(f"at line {line}, column {column}: {problem}"), f"（第 {line} 行第 {column} 列）"
    return printable(f"({' '.join(str(exc).split())})"), ""
