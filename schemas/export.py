"""Writes the JSON Schemas of the wire contracts into schemas/jsonschema/ (`python -m schemas.export`)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter

from schemas.report import Report
from schemas.snapshot import Snapshot

OUT = Path(__file__).parent / "jsonschema"


def contracts() -> dict[str, TypeAdapter]:
    """File stem → type, for every contract exported as JSON Schema."""
    from schemas.events import RECORD

    return {"snapshot": TypeAdapter(Snapshot), "report": TypeAdapter(Report), "events": RECORD}


def schema_text(adapter: TypeAdapter) -> str:
    """The JSON Schema as checked-in text."""
    return json.dumps(adapter.json_schema(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for stem, adapter in contracts().items():
        (OUT / f"{stem}.schema.json").write_text(schema_text(adapter), encoding="utf-8")


if __name__ == "__main__":
    main()
