"""deploy/ is for users with Docker; here it is checked statically."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_dockerfile_copies_what_exists_and_installs_the_project():
    lines = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8").splitlines()
    copied = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    assert copied, "the Dockerfile copies the project"
    for sources in copied:
        for source in sources:
            assert (ROOT / source).exists(), source
    packages = {"schemas", "rules", "streams", "alerts", "junheng"}
    assert packages <= {s for sources in copied for s in sources}
    assert any("pip install" in line and " ." in line for line in lines)


def test_every_runbook_link_of_the_generated_alerts_has_its_anchor_in_the_readme():
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', readme))
    links = set()
    for path in (ROOT / "deploy" / "prometheus" / "rules").rglob("*.yaml"):
        links |= set(re.findall(r"README\.md#([A-Za-z0-9_\-]+)", path.read_text(encoding="utf-8")))
    assert links, "the generated rules link into the README"
    assert links <= anchors, sorted(links - anchors)
