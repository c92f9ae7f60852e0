"""``python -m zerotrust access``: who may do what, from ``.github/access.yaml``.

- ``--script`` prints the set-up script docs/deploying.md shows (Azure state, Key Vault keys,
  identities, role assignments, GitHub environments and branch protection), rendered from
  the file, so the docs and the checks never disagree.
- ``--check`` judges the file (exit 1 with one line per problem): no identity that runs
  pull-request code reaches prod, reads a credential, writes anything or decrypts another
  stack's secrets than those it previews, and the stacks it reaches hold no credential.

Azure's built-in roles are modelled by the permissions that decide these questions (Azure
built-in roles reference, learn.microsoft.com/azure/role-based-access-control/built-in-roles);
a role the table does not know is a problem, never assumed harmless.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

ACCESS_FILE = Path(".github") / "access.yaml"


@dataclass(frozen=True)
class Role:
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()


BUILT_IN: dict[str, Role] = {
    "Reader": Role(actions=("*/read",)),
    "Contributor": Role(
        actions=("*",),
        not_actions=(
            "Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write", "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action", "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete",
        ),
    ),
    "Azure Kubernetes Service Cluster User Role": Role(
        actions=("Microsoft.ContainerService/managedClusters/listClusterUserCredential/action", "Microsoft.ContainerService/managedClusters/read"),
    ),
    "Azure Kubernetes Service RBAC Reader": Role(
        actions=("Microsoft.Authorization/*/read", "Microsoft.Resources/subscriptions/operationresults/read",
                 "Microsoft.Resources/subscriptions/read", "Microsoft.Resources/subscriptions/resourceGroups/read"),
        data_actions=("Microsoft.ContainerService/managedClusters/*/read",),
        not_data_actions=("Microsoft.ContainerService/managedClusters/secrets/*",),
    ),
    "Azure Kubernetes Service RBAC Cluster Admin": Role(
        actions=("Microsoft.Authorization/*/read", "Microsoft.Resources/subscriptions/operationresults/read",
                 "Microsoft.Resources/subscriptions/read", "Microsoft.Resources/subscriptions/resourceGroups/read",
                 "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"),
        data_actions=("Microsoft.ContainerService/managedClusters/*",),
    ),
    "Storage Blob Data Reader": Role(
        actions=("Microsoft.Storage/storageAccounts/blobServices/containers/read",
                 "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
        data_actions=("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",),
    ),
    "Storage Blob Data Contributor": Role(
        actions=("Microsoft.Storage/storageAccounts/blobServices/containers/*",
                 "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action"),
        data_actions=("Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*",),
    ),
    "Key Vault Crypto User": Role(
        data_actions=("Microsoft.KeyVault/vaults/keys/read", "Microsoft.KeyVault/vaults/keys/update/action",
                      "Microsoft.KeyVault/vaults/keys/backup/action", "Microsoft.KeyVault/vaults/keys/encrypt/action",
                      "Microsoft.KeyVault/vaults/keys/decrypt/action", "Microsoft.KeyVault/vaults/keys/wrap/action",
                      "Microsoft.KeyVault/vaults/keys/unwrap/action", "Microsoft.KeyVault/vaults/keys/sign/action",
                      "Microsoft.KeyVault/vaults/keys/verify/action"),
    ),
}
"""The built-in roles the set-up uses, by the permissions that matter here."""

CREDENTIALS = (
    ("action", "Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action", "the cluster's admin credential"),
    ("action", "Microsoft.ContainerService/managedClusters/listClusterMonitoringUserCredential/action", "a monitoring credential"),
    ("action", "Microsoft.ContainerService/managedClusters/runCommand/action", "run command (kubectl as the cluster)"),
    ("data", "Microsoft.ContainerService/managedClusters/secrets/read", "the cluster's Kubernetes Secrets"),
    ("data", "Microsoft.KeyVault/vaults/secrets/getSecret/action", "Key Vault secrets"),
    ("action", "Microsoft.Storage/storageAccounts/listKeys/action", "the storage account's keys"),
)
"""Permissions that hand out a credential, whatever the rest of the set-up."""
USER_CREDENTIAL = "Microsoft.ContainerService/managedClusters/listClusterUserCredential/action"
DECRYPT = "Microsoft.KeyVault/vaults/keys/decrypt/action"
READ_STATE = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Assignment(_Model):
    role: str
    scope: str


class Identity(_Model):
    app: str
    roles: tuple[Assignment, ...]


class Environment(_Model):
    identity: str
    deployment_branches: tuple[str, ...] = Field((), alias="deploymentBranches")
    reviewers: bool = False
    prevent_self_review: bool = Field(False, alias="preventSelfReview")
    runs_pull_request_code: bool = Field(False, alias="runsPullRequestCode")
    previews: tuple[str, ...] = ()


class MainBranch(_Model):
    required_approvals: int = Field(1, alias="requiredApprovals", ge=1)
    require_code_owner_reviews: bool = Field(True, alias="requireCodeOwnerReviews")
    dismiss_stale_reviews: bool = Field(True, alias="dismissStaleReviews")
    require_last_push_approval: bool = Field(True, alias="requireLastPushApproval")
    enforce_admins: bool = Field(True, alias="enforceAdmins")


class GitHub(_Model):
    reviewers: str
    main: MainBranch


class CustomRole(_Model):
    description: str
    actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = Field((), alias="dataActions")


class Access(_Model):
    stacks: tuple[str, ...]
    github: GitHub
    environments: dict[str, Environment]
    identities: dict[str, Identity]
    custom_roles: dict[str, CustomRole] = Field(default_factory=dict, alias="customRoles")

    def role(self, name: str) -> Role | None:
        if name in self.custom_roles:
            c = self.custom_roles[name]
            return Role(actions=c.actions, data_actions=c.data_actions)
        return BUILT_IN.get(name)


def read_access(path: Path) -> Access:
    """The access file; ``ValueError`` with one line per problem."""
    try:
        return Access.model_validate(yaml.safe_load(path.read_text()))
    except ValidationError as e:
        raise ValueError("\n".join(f"{path}: {'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())) from None


def _matches(patterns: Iterable[str], permission: str) -> bool:
    return any(fnmatch.fnmatchcase(permission.lower(), p.lower()) for p in patterns)


def grants(role: Role, permission: str, data: bool = False) -> bool:
    """Whether a role grants one permission (Azure's wildcards, NotActions subtracted)."""
    allowed, denied = (role.data_actions, role.not_data_actions) if data else (role.actions, role.not_actions)
    return _matches(allowed, permission) and not _matches(denied, permission)


def writes(role: Role) -> list[str]:
    """The write-like grants of a role (actions that change a resource, data actions that change data)."""
    out = [a for a in role.actions if a == "*" or a.lower().endswith(("/write", "/delete", "/*"))]
    out += [a for a in role.data_actions if not a.lower().endswith(("/read", "/decrypt/action", "/verify/action"))]
    return out


def _scope_stack(scope: str) -> str:
    return scope.split(":", 1)[1] if ":" in scope else ""


# -- judging -------------------------------------------------------------------------------------------


def problems(access: Access, local_accounts: Mapping[str, bool], secret_keys: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Every way the access file breaks the rules above, one line each.

    ``local_accounts``: per Azure stack, whether its cluster keeps local accounts (then a user
    credential is a secret); ``secret_keys``: per stack, the secret config keys its stack file holds.
    """
    out: list[str] = []
    for name, env in access.environments.items():
        if env.identity not in access.identities:
            out.append(f"environments.{name}.identity: {env.identity!r} is no identity of identities:")
    for name, ident in access.identities.items():
        for a in ident.roles:
            kind, _, stack = a.scope.partition(":")
            if kind not in ("group", "state", "key") or stack not in access.stacks:
                out.append(f"identities.{name}: scope {a.scope!r} is not group:, state: or key: of a stack ({', '.join(access.stacks)})")
            if access.role(a.role) is None:
                out.append(f"identities.{name}: role {a.role!r} is not known here; add it to zerotrust/access.py or customRoles")
    for name, env in access.environments.items():
        ident = access.identities.get(env.identity)
        if ident is None:
            continue
        if not env.runs_pull_request_code:
            if not env.deployment_branches or not env.reviewers:
                out.append(f"environments.{name}: deploys need deploymentBranches and reviewers (a branch rule alone is not enough)")
            own = {name}
            for a in ident.roles:
                if _scope_stack(a.scope) not in own:
                    out.append(f"identities.{env.identity}: {a.role} on {a.scope} reaches past its own stack {name!r}")
            continue
        out += _pull_request_code(access, name, env, ident, local_accounts, secret_keys)
    return out


def _pull_request_code(access: Access, env_name: str, env: Environment, ident: Identity,
                       local_accounts: Mapping[str, bool], secret_keys: Mapping[str, tuple[str, ...]]) -> list[str]:
    at = f"identities.{env.identity} (runs pull-request code in {env_name})"
    out = []
    if not env.reviewers or not env.prevent_self_review:
        out.append(f"environments.{env_name}: pull-request code gets a cloud identity only after someone else approves (reviewers, preventSelfReview)")
    for stack in env.previews:
        if stack not in access.stacks:
            out.append(f"environments.{env_name}.previews: {stack!r} is not a stack")
    for a in ident.roles:
        role = access.role(a.role)
        if role is None:
            continue
        stack = _scope_stack(a.scope)
        if stack not in env.previews:
            out.append(f"{at}: {a.role} on {a.scope}: a stack it does not preview")
        for kind, permission, what in CREDENTIALS:
            if grants(role, permission, data=kind == "data"):
                out.append(f"{at}: {a.role} on {a.scope} reads {what}")
        if grants(role, USER_CREDENTIAL) and local_accounts.get(stack, True):
            out.append(f"{at}: {a.role} on {a.scope} lists the user credential of a cluster with local accounts, which is admin-equivalent")
        if grants(role, DECRYPT, data=True) and a.scope.startswith("key:") and secret_keys.get(stack):
            out.append(f"{at}: decrypts {stack}'s secrets: {', '.join(secret_keys[stack])}")
        for w in writes(role):
            out.append(f"{at}: {a.role} on {a.scope} may change things ({w})")
    return out


def can(access: Access, identity: str, permission: str, scope: str, data: bool = False) -> bool:
    """Whether an identity holds a permission on a scope."""
    return any(a.scope == scope and (r := access.role(a.role)) is not None and grants(r, permission, data) for a in access.identities[identity].roles)


# -- the set-up script -------------------------------------------------------------------------------------------


def _scope(scope: str) -> str:
    kind, _, stack = scope.partition(":")
    return {
        "group": f'"/subscriptions/$SUB/resourceGroups/${{RG[{stack}]}}"',
        "state": f'"$ACCOUNT_ID/blobServices/default/containers/pulumi-state-{stack}"',
        "key": f'"$VAULT_ID/keys/pulumi-{stack}"',
    }[kind]


def _quoted(doc: Any, splices: Mapping[str, str]) -> str:
    """JSON as one single-quoted shell word, with ``splices`` (placeholder -> shell variable) left to the shell."""
    text = json.dumps(doc).replace("'", "'\"'\"'")
    for placeholder, variable in splices.items():
        text = text.replace(placeholder, f"'\"${variable}\"'")
    return f"'{text}'"


def script(access: Access) -> str:
    """The set-up script, as docs/deploying.md shows it."""
    q = shlex.quote
    stacks = " ".join(access.stacks)
    lines = [
        "ORG_REPO=my-org/zero-trust-aks            # your repository",
        "ACCOUNT=zerotrustakspulumi                # a globally unique storage account name",
        "VAULT=zero-trust-aks-keys                 # a globally unique Key Vault name",
        "SUB=$(az account show --query id -o tsv)",
        "TENANT=$(az account show --query tenantId -o tsv)",
        "ISSUER=https://token.actions.githubusercontent.com",
        "declare -A RG=([dev]=aks-zero-trust-rg [prod]=aks-zero-trust-prod-rg)   # the stacks' resourceGroupName",
        f"TEAM_ID=$(gh api \"orgs/${{ORG_REPO%%/*}}/teams/{access.github.reviewers}\" --jq .id)   # who approves",
        "",
        "# 1. State and keys: a private storage account (a container per stack) and a Key Vault with one key",
        "#    per stack, each stack's secrets provider (you need Key Vault Crypto Officer to create keys)",
        "az group create --name zero-trust-aks-state --location westeurope",
        "az storage account create --name \"$ACCOUNT\" --resource-group zero-trust-aks-state \\",
        "  --sku Standard_ZRS --min-tls-version TLS1_2 --allow-blob-public-access false --allow-shared-key-access false",
        "ACCOUNT_ID=$(az storage account show --name \"$ACCOUNT\" --query id -o tsv)",
        "az keyvault create --name \"$VAULT\" --resource-group zero-trust-aks-state --location westeurope \\",
        "  --enable-rbac-authorization true --enable-purge-protection true",
        "VAULT_ID=$(az keyvault show --name \"$VAULT\" --query id -o tsv)",
        f"for STACK in {stacks}; do",
        "  az group create --name \"${RG[$STACK]}\" --location westeurope",
        "  az storage container create --account-name \"$ACCOUNT\" --name \"pulumi-state-$STACK\" --auth-mode login",
        "  az keyvault key create --vault-name \"$VAULT\" --name \"pulumi-$STACK\" --kty RSA --size 3072",
        "done",
    ]
    for name, role in access.custom_roles.items():
        definition = {"Name": name, "Description": role.description, "Actions": list(role.actions),
                      "DataActions": list(role.data_actions), "AssignableScopes": ["/subscriptions/@SUB@"]}
        lines += [f"az role definition create --role-definition {_quoted(definition, {'@SUB@': 'SUB'})}"]
    lines += ["", "# 2. One identity per environment, no client secret: a federated credential for that environment only"]
    for env_name, env in access.environments.items():
        ident = access.identities[env.identity]
        var = env.identity.upper().replace("-", "_")
        credential = {"name": f"github-{env_name}", "issuer": "@ISSUER@", "subject": f"repo:@ORG_REPO@:environment:{env_name}",
                      "audiences": ["api://AzureADTokenExchange"]}
        text = _quoted(credential, {"@ISSUER@": "ISSUER", "@ORG_REPO@": "ORG_REPO"})
        lines += [
            f"{var}=$(az ad app create --display-name {q(ident.app)} --query appId -o tsv)",
            f"az ad sp create --id \"${var}\"",
            f"az ad app federated-credential create --id \"${var}\" --parameters {text}",
        ]
        lines += [f"az role assignment create --assignee \"${var}\" --role {q(a.role)} --scope {_scope(a.scope)}" for a in ident.roles]
        settings = {"prevent_self_review": env.prevent_self_review,
                    "reviewers": [{"type": "Team", "id": "@TEAM_ID@"}] if env.reviewers else [],
                    "deployment_branch_policy": {"protected_branches": False, "custom_branch_policies": True} if env.deployment_branches else None}
        body = _quoted(settings, {'"@TEAM_ID@"': "TEAM_ID"})
        lines += [f"gh api --method PUT \"repos/$ORG_REPO/environments/{env_name}\" --input - <<< {body} > /dev/null"]
        lines += [f"gh api --method POST \"repos/$ORG_REPO/environments/{env_name}/deployment-branch-policies\" -f name={q(b)} -f type=branch > /dev/null"
                  for b in env.deployment_branches]
        lines += [f"gh variable set AZURE_CLIENT_ID --env {env_name} --body \"${var}\""]
    main = access.github.main
    protection = {
        "required_status_checks": None, "enforce_admins": main.enforce_admins, "restrictions": None,
        "required_pull_request_reviews": {
            "required_approving_review_count": main.required_approvals, "require_code_owner_reviews": main.require_code_owner_reviews,
            "dismiss_stale_reviews": main.dismiss_stale_reviews, "require_last_push_approval": main.require_last_push_approval,
        },
    }
    lines += [
        "",
        "# 3. Repository: variables, and main protected (reviews by code owners, stale approvals dismissed,",
        "#    the last push approved by someone else); CODEOWNERS must name a team that exists",
        "gh variable set AZURE_TENANT_ID --body \"$TENANT\"",
        "gh variable set AZURE_SUBSCRIPTION_ID --body \"$SUB\"",
        "gh variable set PULUMI_STATE_ACCOUNT --body \"$ACCOUNT\"",
        "gh variable set PULUMI_KEY_VAULT --body \"$VAULT\"",
        f"gh api --method PUT \"repos/$ORG_REPO/branches/main/protection\" --input - <<< {_quoted(protection, {})} > /dev/null",
        "",
        "# 4. Create each stack with its own key as secrets provider, and commit its encrypted data key",
        f"for STACK in {stacks}; do",
        "  pulumi login \"azblob://pulumi-state-$STACK?storage_account=$ACCOUNT\"",
        "  pulumi stack init \"$STACK\" --secrets-provider \"azurekeyvault://$VAULT.vault.azure.net/keys/pulumi-$STACK\"",
        "done",
        "git add Pulumi.*.yaml && git commit -m \"Stacks: secrets providers\"",
    ]
    return "\n".join(lines)


def main(args: Any, project_dir: Path) -> int:
    import sys

    try:
        access = read_access(project_dir / ACCESS_FILE)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.script:
        print(script(access))
        return 0
    found = problems(access, *stack_facts(project_dir, access.stacks))
    for line in found:
        print(line)
    if not found:
        print(f"{ACCESS_FILE}: no identity that runs pull-request code reaches prod, reads a credential or decrypts a secret")
    return 1 if found else 0


def stack_facts(project_dir: Path, stacks: Iterable[str]) -> tuple[dict[str, bool], dict[str, tuple[str, ...]]]:
    """Per stack: whether its cluster keeps local accounts, and the secret keys its stack file holds."""
    from policies.config import load_config
    from policies.config.stackfile import read_stack

    local, secrets = {}, {}
    for stack in stacks:
        files = read_stack(project_dir, stack)
        cfg = load_config(files.config)
        local[stack] = cfg.cluster is not None and not cfg.cluster.disable_local_accounts
        secrets[stack] = files.secret_keys
    return local, secrets
