"""Command-line tools: ``python -m zerotrust plan --stack dev``, ``python -m zerotrust verify --stack dev``,
``python -m zerotrust learn --stack dev --flows flows.jsonl``, ``python -m zerotrust promote --stack dev --namespace backend
--observed flows.jsonl``, ``python -m zerotrust query --stack dev``."""

from __future__ import annotations

if __name__ == "__main__":
    # A command, not an import: the collector would scan the SDK's and pydantic's objects again and again while
    # they load, and once more at exit, and none of them is garbage (zerotrust.collector).
    import gc

    gc.disable()

import argparse
import json
import sys
from pathlib import Path

from zerotrust.mockrun import PROJECT_DIR


FLOW_LOGS = (
    "captured traffic: Hubble flows (hubble observe -o json, exporter files, Container Network Logs events.log) or Log Analytics "
    "results (az monitor log-analytics query -o json, or the query API's JSON), in any shape: lines, arrays, pretty-printed"
)


def stack_arguments(parser: argparse.ArgumentParser, what: str = "") -> None:
    parser.add_argument("--stack", required=True, help=f"stack name (reads Pulumi.<stack>.yaml{what})")
    parser.add_argument("--stack-file", type=Path, help="read this stack file instead of Pulumi.<stack>.yaml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zerotrust", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="the offline plan of a stack: resources, manifests and proven connectivity")
    stack_arguments(plan)
    plan.add_argument("--out", type=Path, help="write every Kubernetes object as YAML under this directory")
    plan.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    plan.add_argument(
        "--base",
        type=Path,
        help="the base branch: a checkout (its stack file, guardrail levels and exceptions) or just its stack file; "
        "print every change against it (connectivity, rules, objects, settings)",
    )
    plan.add_argument(
        "--exceptions",
        type=Path,
        help="the reviewed guardrail exceptions (default: guardrails/exceptions.yaml)",
    )
    plan.add_argument(
        "--checkout",
        type=Path,
        help="read the stack file, guardrail levels and exceptions from this checkout, as data (a pull request's "
        "files planned by this code); not with --stack-file, --policy-config or --exceptions",
    )
    plan.add_argument(
        "--observed",
        type=Path,
        nargs="+",
        default=[],
        metavar="FILE",
        help=f"{FLOW_LOGS}: replay them against the plan; exit 1 when the plan would drop observed traffic",
    )
    plan.add_argument(
        "--cluster-policies",
        type=Path,
        metavar="FILE",
        help="with --observed: the policies already in the cluster (kubectl get cnp,ccnp,networkpolicies -A -o yaml), "
        "replayed together with the plan's own",
    )
    plan.add_argument(
        "--policy-config",
        type=Path,
        help="guardrail levels, in pulumi's --policy-pack-config format (default: guardrails/config/<stack>.json)",
    )
    verify = sub.add_parser("verify", help="check a live cluster: nodes, Cilium agents, the stack's policies, and probe every flow")
    stack_arguments(verify, " for the flows and policies")
    verify.add_argument(
        "--kubeconfig",
        type=Path,
        help="kubeconfig file (default: the stack's `kubeconfig` output via the Pulumi CLI, or a local stack's own context)",
    )
    verify.add_argument("--context", help="kubeconfig context (default: the stack's, or the current one)")
    verify.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the probes (default 300)")
    verify.add_argument("--format", choices=("text", "json"), default="text")
    learn = sub.add_parser(
        "learn", help="propose the peers and flows that would allow the observed connections the plan drops"
    )
    stack_arguments(learn)
    learn.add_argument("--flows", type=Path, nargs="+", required=True, metavar="FILE", help=FLOW_LOGS)
    learn.add_argument("--format", choices=("yaml", "json", "markdown"), default="yaml")
    learn.add_argument(
        "--write", action="store_true",
        help="merge the proposal into the stack file in place (comments, key order and style kept), print the diff; "
        "nothing is written when the merged stack does not validate",
    )
    promote = sub.add_parser(
        "promote", help="enforce a staged namespace once a capture shows none of its connections would drop"
    )
    stack_arguments(promote)
    promote.add_argument("--namespace", required=True, help="the staged namespace to enforce")
    promote.add_argument("--observed", type=Path, nargs="+", required=True, metavar="FILE", help=FLOW_LOGS)
    promote.add_argument(
        "--write", action="store_true",
        help="set the namespace's enforcement to enforced in the stack file in place (comments and style kept), print the diff",
    )
    query = sub.add_parser(
        "query", help="the Log Analytics query (KQL) that aggregates a stack's traffic server-side, for plan --observed and learn"
    )
    stack_arguments(query)
    query.add_argument("--days", type=int, default=7, help="how many days of ContainerNetworkLogs to aggregate (default 7)")
    access = sub.add_parser(
        "access", help="who may do what (.github/access.yaml): judge it, or print the set-up script docs/deploying.md shows"
    )
    what = access.add_mutually_exclusive_group()
    what.add_argument("--check", action="store_true", help="judge it: exit 1 with one line per problem (the default)")
    what.add_argument("--script", action="store_true", help="print the set-up script (az and gh commands) it renders to")
    args = parser.parse_args(argv)
    if args.command == "access":
        from zerotrust.access import main as run_access

        return run_access(args, PROJECT_DIR)
    if args.command == "learn":
        return run_learn(args)
    if args.command == "query":
        return run_query(args)
    if args.command == "promote":
        return run_promote(args)
    if args.command == "verify":
        from zerotrust.verify_cli import run_verify

        return run_verify(args)
    return run_plan(args)


def run_plan(args: argparse.Namespace) -> int:
    from zerotrust.plan import PlanError, PlanInputs, base_inputs, check_out_dir, checkout_inputs, make_plan, write_objects
    from zerotrust.report.data import as_json, errors_json

    try:
        if args.out:
            check_out_dir(args.out)
        if args.policy_config is not None and not args.policy_config.is_file():
            raise PlanError([f"--policy-config {args.policy_config}: no such file"])
        if args.cluster_policies is not None and not args.observed:
            raise PlanError(["--cluster-policies: only with --observed (the policies are replayed with the observed traffic)"])
        if args.exceptions is not None and not args.exceptions.is_file():
            raise PlanError([f"--exceptions {args.exceptions}: no such file"])
        if args.checkout is not None:
            given = [flag for flag, v in (("--stack-file", args.stack_file), ("--policy-config", args.policy_config),
                                          ("--exceptions", args.exceptions)) if v is not None]
            if given:
                raise PlanError([f"--checkout: not with {', '.join(given)} (the checkout has its own)"])
            if not args.checkout.is_dir():
                raise PlanError([f"--checkout {args.checkout}: no such directory"])
            head = checkout_inputs(args.checkout, args.stack, "--checkout", "nothing to plan")
        else:
            head = PlanInputs(args.stack_file, args.policy_config, None, args.exceptions)
        plan = make_plan(
            args.stack,
            head.stack_file,
            PROJECT_DIR,
            head.levels,
            observed=args.observed,
            cluster_policies=args.cluster_policies,
            exceptions=head.exceptions,
            levels_dir=head.levels_dir,
            config_dir=head.config_dir,
        )
        base_diff = None
        if args.base is not None:
            from zerotrust.diff import base_diff as diff_against  # only a plan against a base pays for the review

            b = base_inputs(args.base, args.stack, head)
            try:
                base = make_plan(
                    args.stack, b.stack_file, PROJECT_DIR, b.levels, exceptions=b.exceptions, levels_dir=b.levels_dir, config_dir=b.config_dir
                )
            except PlanError as e:
                raise PlanError([f"--base {args.base}: {line}" for line in e.lines]) from None
            base_diff = diff_against(base, plan)
    except PlanError as e:
        for line in e.lines:
            print(f"error: {line}", file=sys.stderr)
        if args.format == "json":
            print(json.dumps(errors_json(args.stack, e.lines), indent=2))
        elif args.format == "markdown":
            from zerotrust.report.markdown import errors_markdown

            print(errors_markdown(args.stack, e.lines))
        return 2
    written = write_objects(plan.run, args.out) if args.out else None
    if args.format == "json":
        print(json.dumps(as_json(plan, base_diff), indent=2))
    elif args.format == "markdown":
        from zerotrust.report.markdown import as_markdown

        print(as_markdown(plan, base_diff))
    else:
        from zerotrust.report.text import print_text

        print_text(plan, base_diff, written, args.out)
    return 0 if plan.ok else 1


def observed_plan(args: argparse.Namespace, files: list[Path], flag: str):
    """The plan of ``--stack`` with captures replayed; ``PlanError`` names a missing file by its flag."""
    from zerotrust.plan import PlanError, make_plan

    missing = [f"{flag} {p}: no such file" for p in files if not p.is_file()]
    if missing:
        raise PlanError(missing)
    return make_plan(args.stack, args.stack_file, PROJECT_DIR, observed=files)


def errors(lines: list[str]) -> int:
    """Bad input: one line each on stderr, exit 2."""
    for line in lines:
        print(f"error: {line}", file=sys.stderr)
    return 2


def run_learn(args: argparse.Namespace) -> int:
    from policies.observed import fragment, learn
    from zerotrust.plan import PlanError

    try:
        plan = observed_plan(args, args.flows, "--flows")
    except PlanError as e:
        return errors(e.lines)
    assert plan.observed is not None and plan.observations is not None
    proposal = learn.propose(plan.config, plan.observed)
    obs = plan.observations
    header = (
        f"zero-trust-aks learn: stack {plan.stack.stack}, {obs.lines} records, {plan.observed.connections} distinct connections"
        + (f", {sum(f.malformed for f in obs.files)} malformed records skipped" if obs.malformed else "")
    )
    stack_file = args.stack_file or PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
    if args.write:
        return write_learned(stack_file, args.stack, proposal, header)
    if args.format == "json":
        print(json.dumps(fragment.as_json(proposal), indent=2))
    elif args.format == "markdown":
        print(fragment.as_markdown(proposal, header))
    else:
        print(fragment.as_yaml(proposal, header, plan.stack.config, stack_file.name), end="")
    return 0


def write_learned(stack_file: Path, stack: str, proposal, header: str) -> int:
    """``learn --write``: the proposal merged into the stack file, validated before anything is written."""
    from policies.observed import fragment

    print(f"# {header}")
    if proposal.empty:
        print(f"nothing to add: {stack_file.name} unchanged")
        for note in proposal.notes:
            print(f"note: {note}")
        return 0
    text = stack_file.read_text()
    if write_stack_file(stack_file, stack, text, fragment.merged_text(text, proposal), "learn --write", "merged"):
        return 2
    for note in proposal.notes:
        print(f"note: {note}")
    print(f"wrote {stack_file}: review the learned entries before you commit them")
    return 0


def write_stack_file(stack_file: Path, stack: str, text: str, changed: str, what: str, how: str) -> bool:
    """Write ``changed`` over a stack file whose text is ``text``, printing the diff; nothing is written (and
    the problems are printed, True returned) when the changed stack would not validate."""
    import difflib
    import os
    import tempfile

    from policies.config import ConfigErrors, load_config
    from policies.config.stackfile import StackFileError, read_stack

    with tempfile.TemporaryDirectory() as d:
        candidate = Path(d) / stack_file.name
        candidate.write_text(changed)
        try:
            candidate_stack = read_stack(PROJECT_DIR, stack, candidate)
            load_config(candidate_stack.config, candidate_stack.problems)
        except (StackFileError, ConfigErrors) as e:
            print(f"error: {what}: the {how} stack would not validate; {stack_file.name} is unchanged:", file=sys.stderr)
            for line in e.lines:
                print(f"error: {line}", file=sys.stderr)
            return True
    sys.stdout.writelines(difflib.unified_diff(text.splitlines(True), changed.splitlines(True), str(stack_file), str(stack_file)))
    tmp = stack_file.with_name(f".{stack_file.name}.zerotrust")
    tmp.write_text(changed)
    os.replace(tmp, stack_file)  # atomic: the file is the old one or the changed one, never half of each
    return False


def run_promote(args: argparse.Namespace) -> int:
    """``promote``: enforce a staged namespace once a capture shows none of its connections would drop."""
    from policies.config import PROJECT
    from policies.observed import promote
    from zerotrust.plan import PlanError

    try:
        plan = observed_plan(args, args.observed, "--observed")
    except PlanError as e:
        return errors(e.lines)
    wrong = promote.problems(plan.config, args.namespace)
    if wrong:
        return errors(wrong)
    assert plan.observed is not None and plan.observations is not None
    result = promote.check(plan.observed, plan.observations, args.namespace)
    staged = plan.observed.staged
    decided = f" ({staged.by_cilium} decided by Cilium's policy verdicts, {staged.offline} judged offline)" if staged else ""
    print(f"# zero-trust-aks promote: stack {plan.stack.stack}, namespace {args.namespace}: {result.connections} connections in the capture{decided}")
    if not result.ready:
        for line in result.why_not:
            print(line)
        files = " ".join(str(p) for p in args.observed)
        print(f"{args.namespace} stays staged: declare what it needs (python -m zerotrust learn --stack {args.stack} --flows {files}), "
              "capture again, and promote then")
        return 1
    stack_file = args.stack_file or PROJECT_DIR / f"Pulumi.{args.stack}.yaml"
    text = stack_file.read_text()
    changed = promote.promoted_text(text, args.namespace)
    if not args.write:
        print(f"nothing of {args.namespace} would drop once enforced: set, in {stack_file.name},")
        print(f"  {PROJECT}:namespaces:\n    {args.namespace}:\n      enforcement: enforced")
        print("(or run promote --write to make the change)")
        return 0
    if write_stack_file(stack_file, args.stack, text, changed, "promote --write", "promoted"):
        return 2
    print(f"wrote {stack_file}: {args.namespace} is enforced at the next pulumi up")
    return 0


def run_query(args: argparse.Namespace) -> int:
    from policies.config import ConfigErrors, load_config
    from policies.observed.log_analytics import query_text
    from policies.config.stackfile import StackFileError, read_stack

    try:
        if not 1 <= args.days <= 730:
            raise ConfigErrors(["--days: from 1 to 730 (Log Analytics keeps at most two years)"])
        stack = read_stack(PROJECT_DIR, args.stack, args.stack_file)
        cfg = load_config(stack.config, stack.problems)
    except (StackFileError, ConfigErrors) as e:
        for line in e.lines:
            print(f"error: {line}", file=sys.stderr)
        return 2
    print(query_text(args.stack, cfg.namespaces, args.days), end="")
    return 0


if __name__ == "__main__":
    from zerotrust import collector

    collector.command_started()
    status = main()
    collector.command_ending()
    sys.exit(status)
