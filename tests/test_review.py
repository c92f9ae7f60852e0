"""plan --base lists every widening of a rule, not only the cells that flip, in text, markdown and JSON."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from policies.analysis.review.rules import _compare
from policies.config.stackfile import read_stack
from tests.conftest import rendered
from zerotrust.__main__ import main
from zerotrust.mockrun import PROJECT_DIR

SHOP_FILE = PROJECT_DIR / "examples" / "Pulumi.shop.yaml"


def widened_shop(tmp_path):
    """The shop with an HTTP path, an outside name and an address range each widened."""
    config = copy.deepcopy(read_stack(PROJECT_DIR, "shop", SHOP_FILE).config)
    flows = config["zero-trust-aks:flows"]
    (web_api,) = [f for f in flows if f.get("from") == "web" and f.get("to") == "api"]
    web_api["http"][1]["path"] = "/.*"
    (stripe,) = [f for f in flows if f.get("toFqdns")]
    stripe["toFqdns"] = ["*.stripe.com"]
    config["zero-trust-aks:peers"]["card-processor"] = {"cidrs": ["198.51.0.0/16"]}
    path = tmp_path / "Pulumi.shop.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


def plan(tmp_path, fmt, capsys) -> tuple[int, str]:
    code = main(["plan", "--stack", "shop", "--stack-file", str(widened_shop(tmp_path)), "--base", str(SHOP_FILE), "--format", fmt])
    return code, capsys.readouterr().out


def test_json_lists_the_three_widenings_with_their_flows_and_the_cells_stay_the_same(tmp_path, capsys):
    code, out = plan(tmp_path, "json", capsys)
    diff = json.loads(out)["diff"]
    assert code == 0  # the exit code says only whether the stack holds
    assert diff["newlyAllowed"] == [] and diff["noLongerAllowed"] == []
    widened = {(c["what"], c["before"], c["after"], c["flow"]) for c in diff["rules"] if c["change"] == "widened"}
    assert widened == {
        ("http", "GET /api/.*, POST /api/orders", "GET /api/.*, POST /.*", "web -> api:8080/TCP"),
        ("fqdn", "api.stripe.com", "*.stripe.com", "payments -> *.stripe.com:443/TCP"),
        ("cidr", "198.51.100.0/24 except 198.51.100.128/25", "198.51.0.0/16", "payments -> card-processor:443/TCP"),
    }


def test_markdown_marks_each_widening_and_carries_the_object_diff_collapsed(tmp_path, capsys):
    _, out = plan(tmp_path, "markdown", capsys)
    seen = rendered(out)
    assert "widened http in shop-core/zt-allow.api (web -> api:8080/TCP)" in seen
    assert "widened fqdn in shop-core/zt-allow.payments (payments -> *.stripe.com:443/TCP)" in seen
    assert "widened cidr in shop-core/zt-allow.payments (payments -> card-processor:443/TCP)" in seen
    assert "<details><summary>Objects that change (" in out and "```diff" in out and "+          path: /.*" in out


def test_text_flags_each_widening(tmp_path, capsys):
    _, out = plan(tmp_path, "text", capsys)
    rules = [line for line in out.splitlines() if line.startswith("! widened") and " in " in line.split(":")[0]]
    assert len(rules) == 3
    assert "! widened zero-trust-aks:peers.card-processor.cidrs: " in out  # and the setting behind the widened cidr


@pytest.mark.parametrize(
    "what, before, after, verdict",
    [
        ("http", {"POST /charge"}, {"POST /.*"}, "widened"),
        ("http", {"POST /.*"}, {"POST /charge"}, "narrowed"),
        ("http", {"POST /charge"}, {"GET /charge"}, "changed"),
        ("fqdn", {"api.stripe.com"}, {"*.stripe.com"}, "widened"),
        ("fqdn", {"a.b.stripe.com"}, {"*.stripe.com"}, "changed"),  # one * is one label
        ("cidr", {"10.0.1.0/24"}, {"10.0.0.0/16"}, "widened"),
        ("cidr", {"10.0.0.0/16"}, {"10.0.0.0/16 except 10.0.9.0/24"}, "narrowed"),
        ("entity", {"kube-apiserver"}, {"kube-apiserver", "world"}, "widened"),
        ("port", {"8080/TCP"}, {"8000-8100/TCP"}, "widened"),
    ],
)
def test_each_kind_of_rule_change_is_classified(what, before, after, verdict):
    assert _compare(what, before, after) == verdict
