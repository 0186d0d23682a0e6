"""deploy/prometheus/rules: Prometheus' own rule unit tests (`promtool test rules`, the file
tests/deploy/alerts.test.yml) pass; every alert there has a case that fires and one that stays quiet;
and the tests are live: loosening an alert back to what it was (every rejection counted as shedding)
makes them fail."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.deploy.deploytools import PROM_RULES, REPO, run, tool

RULE_TESTS = REPO / "tests" / "deploy" / "alerts.test.yml"


def alerts() -> list[str]:
    return [r["alert"] for f in sorted(PROM_RULES.glob("*.yml")) for g in yaml.safe_load(f.read_text())["groups"]
            for r in g["rules"] if "alert" in r]  # fmt: skip


def promtool_test(path: Path) -> tuple[int, str]:
    out = run([tool("promtool"), "test", "rules", str(path)])
    return out.returncode, out.stdout + out.stderr


def test_alert_rule_unit_tests_pass() -> None:
    rc, report = promtool_test(RULE_TESTS)
    assert rc == 0 and "SUCCESS" in report, report


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    spec = yaml.safe_load(RULE_TESTS.read_text())
    assert [str((RULE_TESTS.parent / f).resolve()) for f in spec["rule_files"]] == [
        str(f.resolve()) for f in sorted(PROM_RULES.glob("*.yml"))
    ]
    cases = [c for t in spec["tests"] for c in t["alert_rule_test"]]
    for alert in alerts():
        mine = [c for c in cases if c["alertname"] == alert]
        assert any(c["exp_alerts"] for c in mine), f"{alert}: no case where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{alert}: no case where it stays quiet"


def test_the_rule_tests_catch_a_loosened_alert(tmp_path: Path) -> None:
    """The old TerseShedding counted every rejection (401, 413, 422 too): the quiet case must fail."""
    (rules_file,) = sorted(PROM_RULES.glob("*.yml"))
    rules = yaml.safe_load(rules_file.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "TerseShedding":
                rule["expr"] = rule["expr"].replace(', status=~"429|503"', ', status=~"4..|503"')
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / rules_file.name).write_text(yaml.safe_dump(rules, sort_keys=False))
    spec = yaml.safe_load(RULE_TESTS.read_text())
    spec["rule_files"] = [f"rules/{rules_file.name}"]
    (tmp_path / "alerts.test.yml").write_text(yaml.safe_dump(spec, sort_keys=False))
    rc, report = promtool_test(tmp_path / "alerts.test.yml")
    assert rc != 0 and "TerseShedding" in report, report
