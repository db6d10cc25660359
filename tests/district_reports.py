"""A worker's districts as `alerts.metrics.MetricsText` reads them, for the tests of `/metrics`."""

from __future__ import annotations

from alerts.health import Health


class DistrictReports:
    """A worker's districts as MetricsText reads them, counting the reports it builds. A district
    is (version, report), its schools all at the district's version, or (version, report, school
    versions). A report of some schools keeps every rule not evaluated in the district, as a
    worker's does (streams/live.py LiveAssessment.report)."""

    def __init__(self, reports: dict, health: Health | None = None):
        self.reports = reports
        self.built: list[str] = []
        self.schools_built: list[list[str] | None] = []
        self._health = health or Health()

    def districts(self):
        for district_id, (version, report, *schools) in self.reports.items():
            versions = schools[0] if schools else {s.id: version for s in report.schools}
            yield district_id, version, versions, lambda chosen, r=report, d=district_id: self._built(d, r, chosen)

    def _built(self, district_id: str, report, chosen):
        self.built.append(district_id)
        self.schools_built.append(None if chosen is None else sorted(chosen))
        if chosen is None:
            return report
        return report.model_copy(update={
            "schools": [s for s in report.schools if s.id in chosen],
            "violations": [v for v in report.violations if v.school is None or v.school in chosen]})

    def health(self):
        return self._health
