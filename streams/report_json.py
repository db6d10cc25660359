"""A report as JSON, serialized in steps on a worker's event loop.

A worker's national `/report` lists about 100,000 schools, and pydantic took 1.2 s to serialize
it: in one step, that held folding, `/metrics` and `/ready` as long. Here each list of the report
is serialized in slices, by the same pydantic serializers, giving the loop back between slices;
the bytes are those of `Report.model_dump_json()`.
"""

from __future__ import annotations

from pydantic import TypeAdapter

from junheng.turns import Turns
from schemas.report import Report

#: Items serialized in one slice: a few milliseconds of work.
SLICE = 200

_ADAPTERS = {name: TypeAdapter(field.annotation) for name, field in Report.model_fields.items()}
_LISTS = {name for name, field in Report.model_fields.items() if getattr(field.annotation, "__origin__", None) is list}


async def report_json_in_steps(report: Report, step_seconds: float = 0.05) -> bytes:
    """`report.model_dump_json()` as bytes, built in steps of about `step_seconds`."""
    turns = Turns(step_seconds)
    pieces = [b"{"]
    for index, name in enumerate(Report.model_fields):
        pieces.append(b'%s"%s":' % (b"," if index else b"", name.encode()))
        value, adapter = getattr(report, name), _ADAPTERS[name]
        if name not in _LISTS:
            pieces.append(adapter.dump_json(value))
            continue
        slices = []
        for start in range(0, len(value), SLICE):
            slices.append(adapter.dump_json(value[start:start + SLICE])[1:-1])  # without its brackets
            await turns.pause()
        pieces.append(b"[" + b",".join(slices) + b"]")
    pieces.append(b"}")
    return b"".join(pieces)
