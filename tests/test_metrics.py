"""The worker's /metrics: contract names and labels (contracts.md §3) built from real reports."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from alerts.health import Health
from alerts.metrics import MetricsText, ReportCollector, ReportHolder, metrics_app_bytes
from district_reports import DistrictReports
from small_districts import GUSU, GUSU_SCHOOLS, PACK, SIP, SIP_SCHOOLS, district, report, school, without


def scrape(source, school_series="all", now=1_000.0) -> dict[str, list]:
    """Metric samples by sample name, from the text a scrape returns."""
    registry = CollectorRegistry()
    registry.register(ReportCollector(source, school_series=school_series, clock=lambda: now))
    text = metrics_app_bytes(registry).decode()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def by_labels(samples, **match) -> list:
    return [s for s in samples if all(s.labels.get(k) == v for k, v in match.items())]


@pytest.fixture
def two_workers_reports():
    return [report([SIP], SIP_SCHOOLS), report([GUSU], GUSU_SCHOOLS)]


def test_contract_series_carry_the_report_figures(two_workers_reports):
    samples = scrape(ReportHolder(two_workers_reports))
    sip = two_workers_reports[0]
    school_r1 = sip.schools[0].sections["primary"].indicators["R1"].value
    (series,) = by_labels(samples["junheng_school_indicator"], school="320571-001", indicator="R1")
    assert series.labels == {"district": "320571", "school": "320571-001", "section": "primary", "indicator": "R1"}
    assert series.value == pytest.approx(school_r1)

    figures = sip.districts[0].sections["primary"].indicators["R4"]
    (mean,) = by_labels(samples["junheng_district_indicator"], district="320571", indicator="R4")
    (cv,) = by_labels(samples["junheng_district_indicator_cv"], district="320571", indicator="R4")
    (cv_limit,) = by_labels(samples["junheng_district_indicator_cv_limit"], district="320571", indicator="R4")
    assert (mean.value, cv.value, cv_limit.value) == pytest.approx((figures.value, figures.cv, 0.50))
    assert {s.labels["district"] for s in samples["junheng_district_indicator"]} == {"320571", "320508"}


def test_violations_are_series_of_one_with_value_and_limit(two_workers_reports):
    samples = scrape(ReportHolder(two_workers_reports))
    (g5,) = by_labels(samples["junheng_rule_violation"], rule="G5")
    assert g5.labels == {"rule": "G5", "district": "320571", "school": "320571-001", "section": "primary",
                         "severity": "critical"}
    assert g5.value == 1
    (g7,) = by_labels(samples["junheng_rule_violation"], rule="G7")
    assert g7.labels == {"rule": "G7", "district": "320508", "school": "", "section": "", "severity": "critical"}
    place = {"rule": "G5", "district": "320571", "school": "320571-001", "section": "primary"}
    assert [s.value for s in by_labels(samples["junheng_rule_value"], **place)] == [46]
    assert [s.value for s in by_labels(samples["junheng_rule_limit"], **place)] == [45]
    violated = {(s.labels["rule"], s.labels["district"]) for s in samples["junheng_rule_violation"]}
    assert {(s.labels["rule"], s.labels["district"]) for s in samples["junheng_rule_value"]} == violated
    assert {(v.rule, v.district) for r in two_workers_reports for v in r.violations} == violated


def test_names_and_counts_for_alert_text(two_workers_reports):
    samples = scrape(ReportHolder(two_workers_reports))
    (info,) = by_labels(samples["junheng_school_info"], school="320571-001")
    assert info.labels == {"district": "320571", "school": "320571-001", "name": "星海实验小学",
                           "district_name": "苏州工业园区"}
    assert {s.labels["name"] for s in samples["junheng_district_info"]} == {"苏州工业园区", "姑苏区"}
    (schools,) = by_labels(samples["junheng_district_schools"], district="320571", section="primary")
    (compliant,) = by_labels(samples["junheng_district_schools_compliant"], district="320571", section="primary")
    assert (schools.value, compliant.value) == (2, 2)  # G5 is not one of the seven compliance indicators


UNREPORTED = "junheng_district_indicator_schools_unreported"
HEADER = [b"# HELP junheng_district_indicator_schools_unreported School sections of a level that did not report "
          b"an indicator's figure: its mean and CV are over the others (absent when all reported)",
          b"# TYPE junheng_district_indicator_schools_unreported gauge"]


def family_lines(text: bytes, name: str) -> list[bytes]:
    """The lines of one family in a /metrics text: its # HELP and # TYPE lines, then its samples."""
    n = name.encode()
    return [line for line in text.splitlines() if line.startswith((n + b"{", n + b" ", b"# HELP " + n + b" ",
                                                                    b"# TYPE " + n + b" "))]


def collected(reports) -> bytes:
    registry = CollectorRegistry()
    registry.register(ReportCollector(ReportHolder(reports)))
    return metrics_app_bytes(registry)


def cached(reports) -> bytes:
    return MetricsText(DistrictReports({r.districts[0].id: (1, r) for r in reports})).render()


@pytest.mark.parametrize("render", [collected, cached])
def test_a_cv_over_part_of_the_schools_is_marked_with_how_many_did_not_report(render):
    # Four primary schools in 320571: 003 reported neither its sports area (R5) nor its equipment
    # value (R6), 004 not its equipment value. R5's mean and CV are over 3 of the 4, R6's over 2.
    schools = [*SIP_SCHOOLS, without(school("320571-003", "320571", "星湖小学"), "sports_area_m2", "equipment_value_cny"),
               without(school("320571-004", "320571", "星港小学"), "equipment_value_cny")]
    text = render([report([SIP], schools), report([GUSU], GUSU_SCHOOLS)])
    assert family_lines(text, UNREPORTED) == [
        *HEADER,
        b'junheng_district_indicator_schools_unreported{district="320571",indicator="R5",section="primary"} 1.0',
        b'junheng_district_indicator_schools_unreported{district="320571",indicator="R6",section="primary"} 2.0',
    ]
    # The figures it marks are exported as before, over the schools that reported: R6 over 001
    # (400,000 CNY for 86 pupils, 4,651.16 each) and 002 (126 pupils, 3,174.60): X̄ = 800,000 / 212
    # = 3,773.58, S² = (86 × 877.58² + 126 × 598.98²) / 212 = 525,653, S = 725.0, CV = 0.1921.
    lines = text.splitlines()
    assert b'junheng_district_indicator{district="320571",indicator="R6",section="primary"} 3773.5849' in lines
    assert b'junheng_district_indicator_cv{district="320571",indicator="R6",section="primary"} 0.1921' in lines


@pytest.mark.parametrize("render", [collected, cached])
def test_no_unreported_series_when_every_school_reports(render, two_workers_reports):
    assert family_lines(render(two_workers_reports), UNREPORTED) == HEADER  # the family, without a sample


NOT_EVALUATED = "junheng_rules_not_evaluated"
NOT_EVALUATED_HEADER = [
    b"# HELP junheng_rules_not_evaluated Places in a district (school sections, schools, the district or its levels) "
    b"where a rule could not be evaluated for want of data (absent when none)",
    b"# TYPE junheng_rules_not_evaluated gauge"]


def blind_sip() -> list:
    """苏州工业园区 without its teacher pay (G7 undecided for the district), and two schools more
    that did not report their music rooms (G3.music undecided for each), beside a complete 姑苏区."""
    sip = {k: v for k, v in SIP.items() if k != "teacher_avg_pay_cny"}
    schools = [*SIP_SCHOOLS, without(school("320571-003", "320571", "星湖小学"), "music_rooms_m2"),
               without(school("320571-004", "320571", "星港小学"), "music_rooms_m2")]
    return [report([sip], schools), report([GUSU], GUSU_SCHOOLS)]


BLIND_SIP_LINES = [
    *NOT_EVALUATED_HEADER,
    b'junheng_rules_not_evaluated{district="320571",rule="G3.music"} 2.0',
    b'junheng_rules_not_evaluated{district="320571",rule="G7"} 1.0',
]


@pytest.mark.parametrize("render", [collected, cached])
def test_rules_not_evaluated_are_counted_by_district_and_rule(render):
    text = render(blind_sip())
    assert family_lines(text, NOT_EVALUATED) == BLIND_SIP_LINES
    # An undecided rule is no violation: 320571's one violation is 001's class of 46 (G5), and
    # only 姑苏区's G7, decided and broken, is a G7 violation.
    violated = {(dict(labels)["district"], dict(labels)["rule"]) for name, labels, _ in parsed(text)
                if name == "junheng_rule_violation"}
    assert violated == {("320571", "G5"), ("320508", "G7")}


@pytest.mark.parametrize("render", [collected, cached])
def test_a_place_repeated_in_the_report_counts_once(render):
    sip, gusu = blind_sip()
    repeated = sip.model_copy(update={"not_evaluated": sip.not_evaluated * 2})
    assert family_lines(render([repeated, gusu]), NOT_EVALUATED) == BLIND_SIP_LINES


@pytest.mark.parametrize("render", [collected, cached])
def test_no_not_evaluated_series_when_every_rule_was_evaluated(render, two_workers_reports):
    assert all(not r.not_evaluated for r in two_workers_reports)
    assert family_lines(render(two_workers_reports), NOT_EVALUATED) == NOT_EVALUATED_HEADER


def test_violations_policy_keeps_school_series_of_violating_schools_only(two_workers_reports):
    samples = scrape(ReportHolder(two_workers_reports), school_series="violations")
    assert {s.labels["school"] for s in samples["junheng_school_indicator"]} == {"320571-001"}
    assert {s.labels["school"] for s in samples["junheng_school_info"]} == {"320571-001"}
    assert {s.labels["district"] for s in samples["junheng_district_indicator"]} == {"320571", "320508"}
    assert len(samples["junheng_rule_violation"]) == len(scrape(ReportHolder(two_workers_reports))["junheng_rule_violation"])


def test_a_fixed_violation_leaves_no_series_at_the_next_scrape():
    holder = ReportHolder([report([SIP], SIP_SCHOOLS)])
    assert by_labels(scrape(holder)["junheng_rule_violation"], rule="G5")
    holder.publish([report([SIP], [school("320571-001", "320571", "星海实验小学"), SIP_SCHOOLS[1]])])
    after = scrape(holder)
    assert "junheng_rule_violation" not in after and "junheng_rule_value" not in after
    assert by_labels(after["junheng_school_indicator"], school="320571-001")


def test_pipeline_counters():
    health = Health(events={("school.updated", "applied"): 7, ("school.updated", "duplicate"): 2},
                    dead_lettered=3, consumer_lag={("junheng.events", 0): 12, ("junheng.events", 1): 0},
                    newest_event_time=940.0, rule_evaluations=99, broker_stalls=1, rereads=4)
    samples = scrape(ReportHolder([], health), now=1_000.0)
    assert {(s.labels["outcome"], s.value) for s in samples["junheng_events_total"]} == {("applied", 7), ("duplicate", 2)}
    assert [s.value for s in samples["junheng_dead_letter_total"]] == [3]
    assert [s.value for s in samples["junheng_rule_evaluations_total"]] == [99]
    assert [s.value for s in samples["junheng_broker_stalls_total"]] == [1]
    assert [s.value for s in samples["junheng_rereads_total"]] == [4]
    assert {(s.labels["partition"], s.value) for s in samples["junheng_consumer_lag"]} == {("0", 12), ("1", 0)}
    assert [s.value for s in samples["junheng_event_lag_seconds"]] == [60.0]


def test_no_event_lag_before_the_first_event():
    assert "junheng_event_lag_seconds" not in scrape(ReportHolder([], Health()))


@pytest.mark.parametrize("exporter", [ReportCollector, MetricsText])
def test_unknown_school_series_policy_is_refused(exporter):
    with pytest.raises(ValueError, match="school_series"):
        exporter(ReportHolder(), school_series="some")


def parsed(text: bytes) -> set:
    return {(s.name, tuple(sorted(s.labels.items())), s.value)
            for family in text_string_to_metric_families(text.decode()) for s in family.samples}


@pytest.mark.parametrize("school_series", ["all", "violations"])
def test_cached_text_equals_the_collector_on_the_same_reports(two_workers_reports, school_series):
    health = Health(events={("school.updated", "applied"): 7}, newest_event_time=940.0)
    sip, gusu = two_workers_reports
    text = MetricsText(DistrictReports({"320571": (1, sip), "320508": (2, gusu)}, health),
                       school_series=school_series, clock=lambda: 1_000.0).render()
    registry = CollectorRegistry()
    registry.register(ReportCollector(ReportHolder(two_workers_reports, health), school_series=school_series,
                                      clock=lambda: 1_000.0))
    expected = metrics_app_bytes(registry)
    assert parsed(text) == parsed(expected)
    assert sorted(text.splitlines()) == sorted(expected.splitlines())


def test_only_changed_districts_are_rendered_again_and_unowned_ones_disappear(two_workers_reports):
    sip, gusu = two_workers_reports
    source = DistrictReports({"320571": (1, sip), "320508": (2, gusu)})
    metrics = MetricsText(source)
    first = metrics.render()
    assert sorted(source.built) == ["320508", "320571"]
    assert metrics.render() == first and len(source.built) == 2

    fixed = report([SIP], [school("320571-001", "320571", "星海实验小学"), SIP_SCHOOLS[1]])
    source.reports["320571"] = (3, fixed)
    after = metrics.render()
    assert source.built[2:] == ["320571"]
    assert not [s for s in parsed(after) if s[0] == "junheng_rule_value" and ("rule", "G5") in s[1]]

    del source.reports["320508"]  # its partition moved to another worker
    left = {dict(labels)["district"] for name, labels, _ in parsed(metrics.render()) if name == "junheng_district_info"}
    assert left == {"320571"}


async def scraped(metrics: MetricsText, budget: float | None = None) -> bytes:
    """A scrape's body as a worker sends it: the parts `render_in_steps` gives, in order."""
    return (await metrics.render_in_steps(budget)).text()


def beside_a_busy_loop(metrics: MetricsText, work):
    """Runs `work` while another task notes, at each turn of the loop, how many districts
    `metrics` holds rendered: its result, and those counts."""
    turns = []

    async def run():
        async def other_work():
            for _ in range(100):
                turns.append(len(metrics._districts))
                await asyncio.sleep(0)
        other = asyncio.create_task(other_work())
        result = await work()
        await other
        return result

    return asyncio.run(run()), turns


def test_a_render_in_steps_gives_the_loop_back_and_equals_one_render(two_workers_reports):
    sip, gusu = two_workers_reports
    reports = {f"32{n:04d}": (1, sip if n % 2 else gusu) for n in range(6)}
    in_steps = MetricsText(DistrictReports(dict(reports)), clock=lambda: 1_000.0, step_seconds=0)
    at_once = MetricsText(DistrictReports(dict(reports)), clock=lambda: 1_000.0)

    body, turns = beside_a_busy_loop(in_steps, lambda: scraped(in_steps))
    assert body == at_once.render()
    # The other task ran while districts were still being rendered, not only before or after.
    assert set(turns) >= {1, 2, 3, 4, 5}


def test_a_district_changed_or_dropped_during_a_render_in_steps_shows_its_latest_state(two_workers_reports):
    sip, gusu = two_workers_reports
    source = DistrictReports({"320571": (1, sip), "320508": (2, gusu)})
    metrics = MetricsText(source, step_seconds=0)
    fixed = report([SIP], [school("320571-001", "320571", "星海实验小学"), SIP_SCHOOLS[1]])

    async def scrape_while_partitions_move():
        scrape = asyncio.create_task(scraped(metrics))
        await asyncio.sleep(0)  # the first district is rendered; then the worker moves on
        source.reports["320571"] = (3, fixed)
        del source.reports["320508"]
        return await scrape

    body = asyncio.run(scrape_while_partitions_move())
    assert body == MetricsText(DistrictReports({"320571": (3, fixed)})).render()


def test_a_render_ahead_leaves_the_next_scrape_nothing_to_render(two_workers_reports):
    sip, gusu = two_workers_reports
    source = DistrictReports({f"32{n:04d}": (1, sip if n % 2 else gusu) for n in range(6)})
    metrics = MetricsText(source, clock=lambda: 1_000.0, step_seconds=0)

    _, turns = beside_a_busy_loop(metrics, metrics.render_ahead)
    assert sorted(source.built) == sorted(source.reports)  # each district once, all ahead
    assert set(turns) >= {1, 2, 3, 4, 5}
    assert metrics.render() == MetricsText(DistrictReports(dict(source.reports)), clock=lambda: 1_000.0).render()
    assert len(source.built) == len(source.reports)  # the scrape after it rendered nothing


def test_a_render_ahead_waits_while_records_wait_and_gives_way_to_a_scrape(two_workers_reports):
    sip, gusu = two_workers_reports
    source = DistrictReports({f"32{n:04d}": (1, sip if n % 2 else gusu) for n in range(4)})
    metrics = MetricsText(source, clock=lambda: 1_000.0, step_seconds=0)
    waiting = [True]

    async def ahead_while_records_wait():
        ahead = asyncio.create_task(metrics.render_ahead(busy=lambda: waiting[0]))
        await asyncio.sleep(0.05)
        rendered_meanwhile = list(source.built)
        waiting[0] = False
        await ahead
        return rendered_meanwhile

    assert asyncio.run(ahead_while_records_wait()) == []
    assert sorted(source.built) == sorted(source.reports)

    for district_id in source.reports:  # every district changes again
        source.reports[district_id] = (2, source.reports[district_id][1])

    async def ahead_during_a_scrape():
        async with metrics._rendering:  # as a scrape holds it while it renders
            ahead = asyncio.create_task(metrics.render_ahead())
            await asyncio.sleep(0.05)
            rendered_meanwhile = len(source.built)
        await ahead
        return rendered_meanwhile

    assert asyncio.run(ahead_during_a_scrape()) == len(source.reports)  # none while the lock was held
    assert len(source.built) == 2 * len(source.reports)


@pytest.mark.parametrize("school_series", ["all", "violations"])
def test_only_the_changed_schools_of_a_district_are_rendered_again(school_series):
    """A school fixed, a school added and a school gone: only the district's own lines and the
    changed schools are rendered again, the others' lines are kept, and the text equals a fresh
    render of the same reports."""
    gone = school("320571-003", "320571", "将关闭小学", (40, 48))
    before = report([SIP], [*SIP_SCHOOLS, gone])
    metrics = MetricsText(source := DistrictReports({"320571": (1, before, {s["id"]: 1 for s in [*SIP_SCHOOLS, gone]})}),
                          school_series=school_series, clock=lambda: 1_000.0)
    metrics.render()
    fixed = school("320571-001", "320571", "星海实验小学")
    added = school("320571-009", "320571", "新建小学", (40, 47))  # over G5's 45 as well
    after = report([SIP], [fixed, SIP_SCHOOLS[1], added])
    source.reports["320571"] = (2, after, {fixed["id"]: 2, SIP_SCHOOLS[1]["id"]: 1, added["id"]: 2})
    text = metrics.render()
    assert source.schools_built == [None, ["320571-001", "320571-009"]]
    fresh = MetricsText(DistrictReports({"320571": (2, after)}), school_series=school_series, clock=lambda: 1_000.0)
    assert text == fresh.render()
    schools = {dict(labels)["school"] for name, labels, _ in parsed(text) if name == "junheng_school_info"}
    assert added["id"] in schools and gone["id"] not in schools
    assert (SIP_SCHOOLS[1]["id"] in schools) == (school_series == "all")


def twelve_districts(class_sizes) -> dict:
    """Twelve one-school districts, their schools' classes as given (46 pupils breaks G5)."""
    ids = [f"3206{n:02d}" for n in range(12)]
    return {did: report([district(did, f"区{n}")], [school(f"{did}-001", did, f"第{n}小学", class_sizes)])
            for n, did in enumerate(ids)}


def behind(text: bytes) -> float:
    (sample,) = [s for name, labels, s in parsed(text) if name == "junheng_metrics_districts_behind"]
    return sample


def places(text: bytes, metric: str) -> set[str]:
    return {dict(labels)["district"] for name, labels, _ in parsed(text) if name == metric}


def test_a_scrape_past_its_budget_shows_older_lines_and_its_render_goes_on():
    broken, fixed = twelve_districts((40, 46)), twelve_districts((40, 42))
    lagging = Health(consumer_lag={("junheng.events", 0): 99})  # a count of its own, not to be confused
    source = DistrictReports({did: (1, r) for did, r in broken.items()}, lagging)
    metrics = MetricsText(source, clock=lambda: 1_000.0, step_seconds=0)
    metrics.render()
    source.reports = {did: (2, r) for did, r in fixed.items()}  # every district's G5 is fixed

    async def scrapes():
        first = await scraped(metrics, budget=0)
        return first, await scraped(metrics)  # waits for the render the first one left going

    first, later = asyncio.run(scrapes())
    still_violated = places(first, "junheng_rule_violation")
    assert 1 <= behind(first) == len(still_violated) < 12  # the older lines of the districts behind
    assert places(first, "junheng_district_info") == set(fixed)  # none is left out: all have lines
    fresh = MetricsText(DistrictReports({did: (2, r) for did, r in fixed.items()}, lagging), clock=lambda: 1_000.0)
    assert later == fresh.render() and behind(later) == 0
    assert len(source.built) == 2 * 12  # each district rendered once again, by one render


def test_districts_never_rendered_are_left_out_until_their_render_ends():
    districts = twelve_districts((40, 46))
    source = DistrictReports({did: (1, r) for did, r in districts.items()})
    metrics = MetricsText(source, clock=lambda: 1_000.0, step_seconds=0)

    async def scrapes():
        first = await scraped(metrics, budget=0)
        return first, await scraped(metrics, budget=60)

    first, later = asyncio.run(scrapes())
    shown = places(first, "junheng_district_info")
    assert behind(first) >= 1 and len(shown) + behind(first) == 12
    assert places(first, "junheng_rule_violation") == shown  # a district's lines come whole or not at all
    assert later == MetricsText(DistrictReports(dict(source.reports)), clock=lambda: 1_000.0).render()
    assert behind(later) == 0 and len(source.built) == 12


def test_the_render_a_budget_left_going_waits_while_the_answer_is_sent():
    source = DistrictReports({did: (1, r) for did, r in twelve_districts((40, 46)).items()})
    metrics = MetricsText(source, clock=lambda: 1_000.0, step_seconds=0)

    async def answer_then_go_on():
        first = await scraped(metrics, budget=0)
        async with metrics.sending():
            before = len(source.built)
            await asyncio.sleep(0.05)
            while_sending = len(source.built) - before
        await scraped(metrics)
        return behind(first), while_sending

    left, while_sending = asyncio.run(answer_then_go_on())
    assert left >= 1 and while_sending == 0
    assert len(source.built) == 12  # then the render went on, each district once


def test_nothing_is_rendered_while_the_source_is_not_settled():
    """A worker building partitions it gained has districts partly built: a scrape then shows
    the lines last rendered, and renders left going (a scrape's, one ahead) wait for the build."""
    broken, fixed = twelve_districts((40, 46)), twelve_districts((40, 42))
    source = DistrictReports({did: (1, r) for did, r in broken.items()})
    building = [False]
    metrics = MetricsText(source, clock=lambda: 1_000.0, step_seconds=0, settled=lambda: not building[0])
    metrics.render()
    source.reports = {did: (2, r) for did, r in fixed.items()}
    building[0] = True
    assert behind(metrics.render()) == 12 and len(source.built) == 12  # even with no deadline

    async def during_a_build():
        answer = await scraped(metrics, budget=0.05)
        ahead = asyncio.create_task(metrics.render_ahead())
        await asyncio.sleep(0.05)
        rendered_meanwhile = len(source.built) - 12
        source.reports = {did: (3, r) for did, r in fixed.items()}  # the build gives new versions
        building[0] = False
        await ahead
        return answer, rendered_meanwhile, await scraped(metrics)

    answer, rendered_meanwhile, later = asyncio.run(during_a_build())
    assert behind(answer) == 12 and places(answer, "junheng_rule_violation") == set(broken)
    assert rendered_meanwhile == 0
    assert later == MetricsText(DistrictReports(dict(source.reports)), clock=lambda: 1_000.0).render()
    assert behind(later) == 0 and len(source.built) == 2 * 12  # once each after the build, as built
