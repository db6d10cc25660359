"""Writes the JSON Schemas of the wire contracts into schemas/jsonschema/ (`python -m schemas.export`)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.report import Report
from schemas.snapshot import Snapshot

OUT = Path(__file__).parent / "jsonschema"


def contracts() -> dict[str, type[BaseModel]]:
    """File stem → model, for every contract exported as JSON Schema."""
    from schemas.events import Record

    return {"snapshot": Snapshot, "report": Report, "events": Record}


def schema_text(model: type[BaseModel]) -> str:
    """The model's JSON Schema as checked-in text."""
    return json.dumps(model.model_json_schema(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for stem, model in contracts().items():
        (OUT / f"{stem}.schema.json").write_text(schema_text(model), encoding="utf-8")


if __name__ == "__main__":
    main()
