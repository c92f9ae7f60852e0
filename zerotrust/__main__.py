"""Command-line tools: ``python -m zerotrust plan --stack dev``, ``python -m zerotrust verify --stack dev``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zerotrust.mockrun import PROJECT_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zerotrust", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="the offline plan of a stack: resources, manifests and proven connectivity")
    plan.add_argument("--stack", required=True, help="stack name (reads Pulumi.<stack>.yaml)")
    plan.add_argument("--stack-file", type=Path, help="read this stack file instead of Pulumi.<stack>.yaml")
    plan.add_argument("--out", type=Path, help="write every Kubernetes object as YAML under this directory")
    plan.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    plan.add_argument("--base", type=Path, help="a stack file from the base branch: print the connectivity diff")
    plan.add_argument(
        "--observed",
        type=Path,
        nargs="+",
        default=[],
        metavar="FILE",
        help="flow logs (hubble observe -o json, Container Network Logs events.log, or Log Analytics rows as JSON): "
        "replay them against the plan; exit 1 when the plan would drop observed traffic",
    )
    plan.add_argument(
        "--policy-config",
        type=Path,
        help="guardrail levels, in pulumi's --policy-pack-config format (default: guardrails/config/<stack>.json)",
    )
    verify = sub.add_parser("verify", help="check a live cluster: nodes, Cilium agents, the stack's policies, and probe every flow")
    verify.add_argument("--stack", required=True, help="stack name (reads Pulumi.<stack>.yaml for the flows and policies)")
    verify.add_argument("--stack-file", type=Path, help="read this stack file instead of Pulumi.<stack>.yaml")
    verify.add_argument(
        "--kubeconfig",
        type=Path,
        help="kubeconfig file (default: the stack's `kubeconfig` output via the Pulumi CLI, or a local stack's own context)",
    )
    verify.add_argument("--context", help="kubeconfig context (default: the stack's, or the current one)")
    verify.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the probes (default 300)")
    verify.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(argv)
    if args.command == "verify":
        from zerotrust.verify_cli import run_verify

        return run_verify(args)
    return run_plan(args)


def run_plan(args: argparse.Namespace) -> int:
    from zerotrust.plan import (
        PlanError,
        as_json,
        base_diff as diff_against,
        as_markdown,
        check_out_dir,
        errors_json,
        errors_markdown,
        make_plan,
        print_text,
        write_objects,
    )

    try:
        if args.out:
            check_out_dir(args.out)
        if args.policy_config is not None and not args.policy_config.is_file():
            raise PlanError([f"--policy-config {args.policy_config}: no such file"])
        plan = make_plan(args.stack, args.stack_file, PROJECT_DIR, args.policy_config, observed=args.observed)
        base_diff = None
        if args.base is not None:
            if not args.base.exists():
                raise PlanError([f"--base {args.base}: no such file"])
            try:
                base = make_plan(args.stack, args.base, PROJECT_DIR, args.policy_config)
            except PlanError as e:
                raise PlanError([f"--base {args.base}: {line}" for line in e.lines]) from None
            base_diff = diff_against(base, plan)
    except PlanError as e:
        for line in e.lines:
            print(f"error: {line}", file=sys.stderr)
        if args.format == "json":
            print(json.dumps(errors_json(args.stack, e.lines), indent=2))
        elif args.format == "markdown":
            print(errors_markdown(args.stack, e.lines))
        return 2
    written = write_objects(plan.run, args.out) if args.out else None
    if args.format == "json":
        print(json.dumps(as_json(plan, base_diff), indent=2))
    elif args.format == "markdown":
        print(as_markdown(plan, base_diff))
    else:
        print_text(plan, base_diff, written, args.out)
    return 0 if plan.ok else 1


if __name__ == "__main__":
    sys.exit(main())
