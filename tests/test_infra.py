"""Static checks of the deployment: infra/main.bicep and its modules (parsed with pycep), training_job/Dockerfile
and .dockerignore.

No Bicep compiler installs offline, so these tests parse the template and check what matters against the code it
deploys: the queue and container names the app uses, the settings it reads, the runtime it needs, the image that
runs the training job. pycep renders identifiers and string literals alike as Python strings; `Bicep.resolve`
substitutes parameter defaults (or the values a test deploys with) and variable values for names that are parameters
or variables, following module parameters to what main.bicep passes them and module outputs to their values.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, get_args

import pytest
from pycep import BicepParser
from pydantic import AliasChoices

from pipeline.core.settings import LOOPBACK_HOSTS, Settings
from tests.bicep_lint import load_properties, undeclared_symbols, unknown_properties

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
MAIN_BICEP = INFRA / "main.bicep"
MODULES = INFRA / "modules"
DOCKERFILE = ROOT / "training_job" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

ROLE_IDS = {
    "storage blob data owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storage blob data contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storage queue data contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storage table data contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "key vault secrets user": "4633458b-17de-408a-b874-0445c86b69e6",
    "acrpull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
}


class Unresolved:
    """An expression the tests do not evaluate (a resource property, listKeys(), ...)."""

    def __init__(self, node: Any) -> None:
        self.node = node

    def __repr__(self) -> str:
        return f"Unresolved({self.node!r})"

    def __eq__(self, other: object) -> bool:
        # One expression of one file reached two ways, e.g. through a module's parameter and through main.bicep.
        return isinstance(other, Unresolved) and self.node is other.node

    def __hash__(self) -> int:
        return id(self.node)


class Scoped(str):
    """A string of one Bicep file: the names in it are that file's parameters, variables, resources and modules."""

    template: Template

    def __new__(cls, text: str, template: Template) -> Scoped:
        scoped = super().__new__(cls, text)
        scoped.template = template
        return scoped


def is_secure(param: dict[str, Any]) -> bool:
    return any(d["type"] == "secure" for d in param["decorators"])


def reference_text(node: Any) -> str | None:
    """`a.b.c` for a property access on a name (a resource property, a module output), else None."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and node.get("operator", {}).get("type") == "property_accessor":
        operands = node["operator"]["operands"]
        left, right = reference_text(operands["operand_1"]), reference_text(operands["operand_2"])
        return f"{left}.{right}" if left is not None and right is not None else None
    return None


def referenced_symbols(node: Any) -> Iterator[str]:
    """The names an expression reads properties of (`x` in `x.outputs.y`, also inside `'${x.y}'`)."""
    if isinstance(node, str):
        yield from re.findall(r"\$\{(\w+)\.", node)
    elif isinstance(node, list):
        for item in node:
            yield from referenced_symbols(item)
    elif isinstance(node, dict):
        operator = node.get("operator", {})
        if operator.get("type") == "property_accessor" and isinstance(operator["operands"]["operand_1"], str):
            yield operator["operands"]["operand_1"]
        for value in node.values():
            yield from referenced_symbols(value)


class Template:
    """One Bicep file, the modules it calls, and (for a module) the parameter values its caller passes."""

    def __init__(self, path: Path, args: dict[str, Any] | None = None) -> None:
        self.path = path
        self.args: dict[str, Any] = args or {}
        self.doc = self._read(BicepParser().parse(file_path=path))
        self.params: dict[str, Any] = self.doc.get("parameters", {})
        self.variables: dict[str, Any] = self.doc.get("variables", {})
        self.resources: dict[str, Any] = self.doc.get("resources", {})
        self.outputs: dict[str, Any] = self.doc.get("outputs", {})
        self.declarations: dict[str, Any] = self.doc.get("modules", {})
        self.modules = {
            name: Template(path.parent / module["detail"]["path"], module["config"].get("params"))
            for name, module in self.declarations.items()
        }

    def _read(self, node: Any) -> Any:
        """Tag every string with this file. A parameter the caller passes reads as the value passed, as in the
        caller's file (so a module body reads like main.bicep's own resources did)."""
        if isinstance(node, str):
            return self.args.get(node, Scoped(node, self))
        if isinstance(node, list):
            return [self._read(item) for item in node]
        if isinstance(node, dict):
            return {key: self._read(value) for key, value in node.items()}
        return node

    def files(self) -> Iterator[Template]:
        yield self
        for module in self.modules.values():
            yield from module.files()

    def is_secure_param(self, name: str) -> bool:
        return name in self.params and is_secure(self.params[name])

    def module_dependencies(self, name: str) -> set[str]:
        """The modules ARM deploys before module `name`: its dependsOn, the modules whose outputs it reads, theirs."""
        config = self.declarations[name]["config"]
        direct = {
            *(config.get("dependsOn") or []),
            *referenced_symbols(config.get("params")),
        } & self.modules.keys()
        return direct.union(*(self.module_dependencies(d) for d in direct))


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's body (for a loop, the body of one iteration; for `= if (...)`, the body it deploys)."""
    config = resource["config"]
    return config["config"] if "loop_type" in config or "condition" in config else config


class Bicep:
    """main.bicep and its modules as one deployment, with a small evaluator for parameters, variables and simple
    expressions.

    `given` holds values for main.bicep's parameters, as if passed at deployment. A parameter not given reads as its
    default; a required secure parameter not given reads as its own name (something is passed, its value unknown).
    `params` and `outputs` are main.bicep's (an output that is a module output reads as that output's value).
    `resources` holds what the modules declare, `references` their `existing` references, `variables` every file's
    variables; each name is declared once across the files. A resource's dependsOn also lists the resources of the
    modules its module deploys after, the order ARM deploys them in.
    """

    def __init__(self, path: Path, given: dict[str, Any] | None = None) -> None:
        self.main = Template(path)
        self.given = given or {}
        assert self.given.keys() <= self.main.params.keys(), (
            f"main.bicep has no {sorted(self.given.keys() - self.main.params.keys())}"
        )
        files = list(self.main.files())
        self.params = self.main.params
        self.variables = self._merged(t.variables for t in files)
        self.resources = self._merged(
            {n: r for n, r in t.resources.items() if not r["existing"]} for t in files
        )
        self.references = [(n, r) for t in files for n, r in t.resources.items() if r["existing"]]
        self.outputs = {
            name: {**output, "value": self._module_output_value(output["value"])}
            for name, output in self.main.outputs.items()
        }
        self._add_module_dependencies(self.main, [])

    @staticmethod
    def _merged(declarations: Iterator[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for names in declarations:
            for name, declaration in names.items():
                assert name not in merged, f"{name} is declared in two files"
                merged[name] = declaration
        return merged

    def _add_module_dependencies(self, template: Template, deployed_before: list[Template]) -> None:
        earlier = [
            n for t in deployed_before for f in t.files() for n, r in f.resources.items() if not r["existing"]
        ]
        for resource in template.resources.values():
            if earlier and not resource["existing"]:
                body(resource)["dependsOn"] = [*(body(resource).get("dependsOn") or []), *earlier]
        for name, module in template.modules.items():
            before = [template.modules[d] for d in sorted(template.module_dependencies(name))]
            self._add_module_dependencies(module, [*deployed_before, *before])

    def _module_output_value(self, node: Any) -> Any:
        """`module.outputs.name` as the value node of that output (followed through modules), else the node."""
        if not isinstance(node, dict) or node.get("operator", {}).get("type") != "property_accessor":
            return node
        symbol = node["operator"]["operands"]["operand_1"]
        path = reference_text(node["operator"]["operands"]["operand_2"]) or ""
        template = getattr(symbol, "template", self.main)
        if isinstance(symbol, str) and symbol in template.modules and path.startswith("outputs."):
            return self._module_output_value(
                template.modules[symbol].outputs[path.removeprefix("outputs.")]["value"]
            )
        return node

    def _resource_name(self, node: Any) -> Any:
        """`resource.name` (for a resource without a parent) as its name node, else None."""
        operands = node["operator"]["operands"]
        symbol = operands["operand_1"]
        template = getattr(symbol, "template", self.main)
        if isinstance(symbol, str) and symbol in template.resources and operands["operand_2"] == "name":
            resource = body(template.resources[symbol])
            return resource["name"] if "parent" not in resource else None
        return None

    def resource(self, name: str) -> dict[str, Any]:
        """A resource's body (for a loop, the body of one iteration)."""
        return body(self.resources[name])

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {n: r for n, r in self.resources.items() if r["type"].lower() == resource_type.lower()}

    def one_of_type(self, resource_type: str) -> str:
        found = self.of_type(resource_type)
        assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
        return next(iter(found))

    def is_secure_param(self, name: str) -> bool:
        return self.main.is_secure_param(name)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, str):
            template = getattr(node, "template", self.main)
            if template is self.main and node in self.given:
                return self.given[node]
            if node in template.params:
                default = template.params[node].get("default")
                if not template.is_secure_param(node):
                    return Unresolved(node) if default is None else self.resolve(default)
                if default is not None:
                    return self.resolve(default)
            if node in template.variables:
                return self.resolve(template.variables[node]["value"])
            return re.sub(r"\$\{(\w+)\}", lambda match: self._interpolate(template, match), node)
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "operator" in node:
            return self._operator(node["operator"]["type"], node["operator"]["operands"], node)
        if "function" in node:
            return self._function(node["function"]["type"], node["function"]["parameters"], node)
        return {key: self.resolve(value) for key, value in node.items()}

    def _interpolate(self, template: Template, match: re.Match[str]) -> str:
        """`${name}` inside a string, where name is a parameter or variable with a plain value. A value that is a
        resource property (reached through module parameters and outputs) is written as that reference."""
        name = match.group(1)
        if name not in (*template.args, *template.params, *template.variables):
            return match.group(0)
        value = self.resolve(template.args.get(name, Scoped(name, template)))
        if isinstance(value, str | int):
            return str(value)
        reference = reference_text(value.node) if isinstance(value, Unresolved) else None
        return f"${{{reference}}}" if reference else match.group(0)

    def _operator(self, kind: str, operands: dict[str, Any], node: Any) -> Any:
        if kind == "property_accessor":
            followed = self._module_output_value(node)
            if followed is not node:
                return self.resolve(followed)
            name = self._resource_name(node)
            if name is not None:
                return self.resolve(name)
            target = self.resolve(operands["operand_1"])
            key = operands["operand_2"]
            while isinstance(target, dict) and isinstance(key, dict) and "operator" in key:
                target, key = (
                    target.get(key["operator"]["operands"]["operand_1"]),
                    key["operator"]["operands"]["operand_2"],
                )
            if isinstance(target, dict) and isinstance(key, str) and key in target:
                return target[key]
            return Unresolved(node)
        if kind == "conditional":
            condition = self.resolve(operands["condition"])
            if isinstance(condition, bool):
                return self.resolve(operands["true_value" if condition else "false_value"])
            return Unresolved(node)
        if kind == "not":
            value = self.resolve(operands["bool_value"])
            return (not value) if isinstance(value, bool) else Unresolved(node)
        if kind in ("add", "multiply"):
            a, b = self.resolve(operands["operand_1"]), self.resolve(operands["operand_2"])
            if isinstance(a, int) and isinstance(b, int):
                return a + b if kind == "add" else a * b
        return Unresolved(node)

    def _function(self, kind: str, parameters: dict[str, Any], node: Any) -> Any:
        args = [self.resolve(value) for value in parameters.values()]
        if kind == "concat" and all(isinstance(a, list) for a in args):
            return [item for a in args for item in a]
        if kind == "string" and isinstance(args[0], str | int):
            return str(args[0])
        if kind == "empty" and isinstance(args[0], str | list | dict):
            return len(args[0]) == 0
        if kind == "json" and isinstance(args[0], str):
            return json.loads(args[0])
        return Unresolved(node)


def settings_list(bicep: Bicep, node: Any) -> dict[str, Any]:
    """`[{name, value|secretRef}]` (app settings, container env) as a dict of name to the raw value node."""
    items = bicep.resolve(node)
    assert isinstance(items, list), f"could not evaluate the settings list {node!r}"
    out: dict[str, Any] = {}
    for item in items:
        assert item["name"] not in out, f"setting {item['name']} is set twice"
        out[item["name"]] = item
    return out


def raw_setting_value(bicep: Bicep, node: Any, name: str) -> Any:
    """The unevaluated value node of one setting (to see which variable or secret it names)."""
    items = node
    while isinstance(items, str) and items in bicep.variables:
        items = bicep.variables[items]["value"]
    if isinstance(items, dict) and items.get("function", {}).get("type") == "concat":
        for part in items["function"]["parameters"].values():
            found = raw_setting_value(bicep, part, name)
            if found is not None:
                return found
        return None
    if isinstance(items, list):
        for item in items:
            if item.get("name") == name:
                return item.get("value", item.get("secretRef"))
    return None


@pytest.fixture(scope="module")
def bicep() -> Bicep:
    return Bicep(MAIN_BICEP)


@pytest.fixture(scope="module")
def function_app(bicep: Bicep) -> dict[str, Any]:
    return bicep.resource(bicep.one_of_type("Microsoft.Web/sites"))


@pytest.fixture(scope="module")
def app_settings(bicep: Bicep, function_app: dict[str, Any]) -> dict[str, Any]:
    return settings_list(bicep, function_app["properties"]["siteConfig"]["appSettings"])


@pytest.fixture(scope="module")
def job(bicep: Bicep) -> dict[str, Any]:
    """The training job (the other Container Apps Job is the export job)."""
    assert sorted(bicep.of_type("Microsoft.App/jobs")) == ["exportJob", "trainingJob"]
    return bicep.resource("trainingJob")


@pytest.fixture(scope="module")
def job_container(job: dict[str, Any]) -> dict[str, Any]:
    containers = job["properties"]["template"]["containers"]
    assert len(containers) == 1
    return containers[0]


def job_secrets(bicep: Bicep, job: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's secrets, evaluated (`keyVaultUrl` and `identity` are resource properties: Unresolved)."""
    secrets = bicep.resolve(job["properties"]["configuration"]["secrets"])
    assert isinstance(secrets, list), f"could not evaluate the job's secrets {secrets!r}"
    return secrets


def reference_of(value: Any) -> str | None:
    """`symbol.a.b` for a value that is a resource property (an Unresolved property access), else None."""
    return reference_text(value.node) if isinstance(value, Unresolved) else None


def settings_default(field: str) -> Any:
    return Settings.model_fields[field].default


def function_app_bindings() -> list[dict[str, str]]:
    """The keyword arguments of every trigger decorator in function_app.py (read, not imported), with the name
    `function_name` gives the function. `source=func.BlobSource.EVENT_GRID` reads as "EventGrid"."""
    tree = ast.parse((ROOT / "function_app.py").read_text())
    bindings = []
    for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
        name = function.name
        for node in function.decorator_list:
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr == "function_name":
                name = node.args[0].value
            elif node.func.attr.endswith("_trigger"):
                kwargs = {k.arg: _constant(k.value) for k in node.keywords}
                bindings.append({"decorator": node.func.attr, "function": name, **kwargs})
    return bindings


def _constant(node: ast.expr) -> Any:
    if isinstance(node, ast.Attribute) and node.attr == "EVENT_GRID":
        return "EventGrid"
    return node.value if isinstance(node, ast.Constant) else ast.dump(node)


# --- Bicep: resources and their properties -------------------------------------------------------------------------


def test_template_declares_every_part_of_the_deployment(bicep: Bicep) -> None:
    types = {r["type"].lower() for r in bicep.resources.values()}
    for expected in (
        "Microsoft.Storage/storageAccounts",
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        "Microsoft.Storage/storageAccounts/queueServices/queues",
        "Microsoft.Storage/storageAccounts/tableServices",
        "Microsoft.EventGrid/systemTopics",
        "Microsoft.EventGrid/systemTopics/eventSubscriptions",
        "Microsoft.Insights/diagnosticSettings",
        "Microsoft.Web/serverfarms",
        "Microsoft.Web/sites",
        "Microsoft.App/managedEnvironments",
        "Microsoft.App/jobs",
        "Microsoft.ContainerRegistry/registries",
        "Microsoft.KeyVault/vaults",
        "Microsoft.KeyVault/vaults/secrets",
        "Microsoft.OperationalInsights/workspaces",
        "Microsoft.Insights/components",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.Authorization/roleAssignments",
    ):
        assert expected.lower() in types, f"no {expected} in main.bicep or its modules"
    # The newest Microsoft.Insights/diagnosticSettings version is a preview: no GA version takes categoryGroup.
    previews = {"Microsoft.Insights/diagnosticSettings": "2021-05-01-preview"}
    for name, resource in bicep.resources.items():
        version = resource["api_version"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", version) or previews.get(resource["type"]) == version, (
            f"{name} uses a preview API version"
        )


def test_storage_accounts_take_no_keys(bicep: Bicep) -> None:
    """Two accounts (Seer's data, the Functions host's), both reached with Entra ID only."""
    accounts = bicep.of_type("Microsoft.Storage/storageAccounts")
    assert set(accounts) == {"dataStorage", "hostStorage"}
    for name in accounts:
        props = bicep.resolve(bicep.resource(name)["properties"])
        assert props["minimumTlsVersion"] == "TLS1_2"
        assert props["allowBlobPublicAccess"] is False
        assert props["supportsHttpsTrafficOnly"] is True
        assert props["allowSharedKeyAccess"] is False, f"{name} accepts account keys"
    for path in INFRA.rglob("*.bicep"):
        text = path.read_text()
        assert "AccountKey=" not in text and "storage.listKeys" not in text.replace(" ", ""), path
        assert not re.search(r"[Ss]torage\w*\.listKeys\(", text), f"{path} reads a storage account key"


def event_grid_blob_trigger() -> dict[str, str]:
    (binding,) = [b for b in function_app_bindings() if b["decorator"] == "blob_trigger"]
    return binding


def test_uploads_container_is_the_blob_triggers_container(bicep: Bicep) -> None:
    """The drop folder's trigger: the Event Grid source (Flex Consumption runs no other blob trigger), on Seer's
    data account (SEER_DATA), whose container the template creates."""
    binding = event_grid_blob_trigger()
    assert binding["source"] == "EventGrid"
    assert binding["connection"] == "SEER_DATA"
    containers = {
        bicep.resolve(bicep.resource(n)["name"]): bicep.resource(n)
        for n in bicep.of_type("Microsoft.Storage/storageAccounts/blobServices/containers")
    }
    container = binding["path"].split("/", 1)[0]
    assert container in containers, f"the blob trigger's container {container!r} is not created"
    assert containers[container]["properties"]["publicAccess"] == "None"
    blob_service = containers[container]["parent"]
    assert bicep.resource(blob_service)["parent"] == "dataStorage"


def test_event_grid_delivers_uploads_to_the_ingest_function(bicep: Bicep) -> None:
    binding = event_grid_blob_trigger()
    topic = bicep.resource(bicep.one_of_type("Microsoft.EventGrid/systemTopics"))
    assert reference_of(bicep.resolve(topic["properties"]["source"])) == "dataStorage.id"
    assert topic["properties"]["topicType"] == "Microsoft.Storage.StorageAccounts"
    name = bicep.one_of_type("Microsoft.EventGrid/systemTopics/eventSubscriptions")
    assert not deployed(bicep, name), "the subscription waits for the code (uploadsEventSubscription)"
    assert deployed(Bicep(MAIN_BICEP, given={"uploadsEventSubscription": True}), name)
    props = bicep.resource(name)["properties"]
    url = bicep.resolve(props["destination"]["properties"]["endpointUrl"])
    assert props["destination"]["endpointType"] == "WebHook"
    assert url.startswith("https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?")
    assert f"functionName=Host.Functions.{binding['function']}&code=" in url
    container = binding["path"].split("/", 1)[0]
    assert (
        bicep.resolve(props["filter"]["subjectBeginsWith"])
        == f"/blobServices/default/containers/{container}/"
    )
    assert props["filter"]["includedEventTypes"] == ["Microsoft.Storage.BlobCreated"]
    assert props["eventDeliverySchema"] == "EventGridSchema"


def test_host_json_configures_the_triggers_the_app_has() -> None:
    """Blob triggers take host.json's `blobs` settings; `queues` would apply only to a queue trigger."""
    host = json.loads((ROOT / "host.json").read_text())
    decorators = {b["decorator"] for b in function_app_bindings()}
    assert "queue_trigger" not in decorators and "queues" not in host["extensions"]
    assert host["extensions"]["blobs"]["poisonBlobThreshold"] >= 1
    assert host["extensions"]["blobs"]["maxDegreeOfParallelism"] >= 1


def test_training_queue_is_the_one_the_app_uses(
    bicep: Bicep, app_settings: dict, job: dict, job_container: dict
) -> None:
    queue = settings_default("training_queue")
    queues = {
        bicep.resolve(bicep.resource(n)["name"])
        for n in bicep.of_type("Microsoft.Storage/storageAccounts/queueServices/queues")
    }
    assert queue in queues
    assert f"{queue}-poison" in queues
    rules = job["properties"]["configuration"]["eventTriggerConfig"]["scale"]["rules"]
    assert [bicep.resolve(r["metadata"]["queueName"]) for r in rules] == [queue]
    assert bicep.resolve(app_settings["SEER_TRAINING_QUEUE"]["value"]) == queue
    env = settings_list(bicep, job_container["env"])
    assert bicep.resolve(env["SEER_TRAINING_QUEUE"]["value"]) == queue


def test_export_job_runs_the_export_module_from_the_exports_queue(
    bicep: Bicep, app_settings: dict, job: dict, job_container: dict
) -> None:
    """The export job: the training image with `python -m training_job.exports`, started per message on the queue
    the app sends exports to, with the training job's identity and settings."""
    export = bicep.resource("exportJob")
    queue = settings_default("export_queue")
    queues = {
        bicep.resolve(bicep.resource(n)["name"])
        for n in bicep.of_type("Microsoft.Storage/storageAccounts/queueServices/queues")
    }
    assert {queue, f"{queue}-poison"} <= queues
    config = export["properties"]["configuration"]
    assert (config["triggerType"], config["replicaRetryLimit"]) == ("Event", 0)
    (rule,) = config["eventTriggerConfig"]["scale"]["rules"]
    assert rule["type"] == "azure-queue" and bicep.resolve(rule["metadata"]["queueName"]) == queue
    assert rule["metadata"]["queueLengthStrategy"] == "all" and "auth" not in rule
    assert reference_of(bicep.resolve(rule["identity"])) == "trainingIdentity.id"
    (container,) = export["properties"]["template"]["containers"]
    assert container["command"] == ["python", "-m", "training_job.exports"]
    # the same image as training on the CPU profile (the default); on a GPU profile: test_the_gpu_profile_...
    assert bicep.resolve(container["image"]) == bicep.resolve(job_container["image"])
    env = settings_list(bicep, container["env"])
    assert bicep.resolve(env["SEER_EXPORT_QUEUE"]["value"]) == queue
    assert bicep.resolve(app_settings["SEER_EXPORT_QUEUE"]["value"]) == queue
    assert (
        reference_of(bicep.resolve(env["SEER_DATA__clientId"]["value"]))
        == "trainingIdentity.properties.clientId"
    )
    assert isinstance(bicep.resolve(config["replicaTimeout"]), int)


def test_function_app_runs_python_311_on_flex_consumption(
    bicep: Bicep, function_app: dict, app_settings: dict
) -> None:
    assert set(function_app["kind"].split(",")) == {"functionapp", "linux"}
    site_config = function_app["properties"]["siteConfig"]
    assert site_config["minTlsVersion"] == "1.2"
    assert site_config["ftpsState"] == "Disabled"
    assert function_app["properties"]["httpsOnly"] is True
    plan = bicep.resource(bicep.one_of_type("Microsoft.Web/serverfarms"))
    assert plan["properties"]["reserved"] is True, "the plan must be Linux"
    assert (plan["sku"]["name"], plan["sku"]["tier"]) == ("FC1", "FlexConsumption")
    config = function_app["properties"]["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    scale = config["scaleAndConcurrency"]
    (always_ready,) = scale["alwaysReady"]
    assert always_ready["name"] == "http" and bicep.resolve(always_ready["instanceCount"]) >= 1
    assert bicep.resolve(scale["instanceMemoryMB"]) == 4096
    assert 40 <= bicep.resolve(scale["maximumInstanceCount"]) <= 1000
    # The package lives in the host's account, read with the app's identity.
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert bicep.resolve(storage["value"]).startswith("${hostStorage.properties.primaryEndpoints.blob}")
    assert reference_of(bicep.resolve(storage["authentication"]["userAssignedIdentityResourceId"])) == (
        "functionsIdentity.id"
    )
    # Flex Consumption takes these from functionAppConfig (or has no content share): none is set.
    for setting in (
        "FUNCTIONS_WORKER_RUNTIME",
        "FUNCTIONS_EXTENSION_VERSION",
        "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
        "WEBSITE_CONTENTSHARE",
        "SCM_DO_BUILD_DURING_DEPLOYMENT",
        "ENABLE_ORYX_BUILD",
        "AzureWebJobsStorage",
    ):
        assert setting not in app_settings, setting
    for name in ("linuxFxVersion", "functionAppScaleLimit", "minimumElasticInstanceCount"):
        assert name not in site_config, name


def test_function_app_sets_every_setting_the_app_needs(
    bicep: Bicep, function_app: dict, app_settings: dict
) -> None:
    # Identity-based connections: `NAME__accountName` plus the identity to use; the host's is AzureWebJobsStorage.
    connections = {b["connection"] for b in function_app_bindings() if "connection" in b} | {
        "AzureWebJobsStorage"
    }
    required = {
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "SEER_TRAINING_KEY",
        "SEER_PREDICTION_KEY",
        "SEER_TRAINING_QUEUE",
    } | {f"{c}__{key}" for c in connections for key in ("accountName", "credential", "clientId")}
    assert required <= app_settings.keys(), f"missing app settings: {sorted(required - app_settings.keys())}"
    for connection in connections:
        assert bicep.resolve(app_settings[f"{connection}__credential"]["value"]) == "managedidentity"
        client = bicep.resolve(app_settings[f"{connection}__clientId"]["value"])
        assert reference_of(client) == "functionsIdentity.properties.clientId", connection
    host = bicep.resolve(app_settings["AzureWebJobsStorage__accountName"]["value"])
    data = bicep.resolve(app_settings["SEER_DATA__accountName"]["value"])
    assert (host, data) == (
        bicep.resolve(bicep.resource("hostStorage")["name"]),
        bicep.resolve(bicep.resource("dataStorage")["name"]),
    )
    assert host != data, "the host's storage is a separate account"
    # The development-key fallback in pipeline.core.settings applies only on a loopback bind host.
    assert bicep.resolve(app_settings["SEER_BIND_HOST"]["value"]) not in LOOPBACK_HOSTS
    app_insights = raw_setting_value(
        bicep,
        function_app["properties"]["siteConfig"]["appSettings"],
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
    )
    assert "appInsights" in json.dumps(app_insights)


def test_function_app_limits_glibc_arenas(bicep: Bicep, app_settings: dict) -> None:
    """Memory freed by one request thread must be reusable by the next (issue 10, item 10)."""
    assert bicep.resolve(app_settings["MALLOC_ARENA_MAX"]["value"]) == "2"


def secret_behind_reference(bicep: Bicep, value: Any) -> str:
    """The Key Vault secret resource a `@Microsoft.KeyVault(SecretUri=...)` value points at."""
    text = bicep.resolve(value)
    assert isinstance(text, str), f"{value!r} is not a Key Vault reference"
    match = re.fullmatch(r"@Microsoft\.KeyVault\(SecretUri=\$\{(\w+)\.properties\.secretUri\}\)", text)
    assert match, f"{text!r} is not a Key Vault reference"
    name = match.group(1)
    assert bicep.resources[name]["type"] == "Microsoft.KeyVault/vaults/secrets"
    return name


def test_keys_come_from_key_vault_and_storage_needs_no_secret(
    bicep: Bicep, function_app: dict, app_settings: dict
) -> None:
    for setting, secure_param in (
        ("SEER_TRAINING_KEY", "trainingKey"),
        ("SEER_PREDICTION_KEY", "predictionKey"),
    ):
        secret = secret_behind_reference(bicep, app_settings[setting]["value"])
        assert bicep.resource(secret)["properties"]["value"] == secure_param
        assert bicep.is_secure_param(secure_param)
        assert bicep.params[secure_param].get("default") is None
    secrets = {
        bicep.resolve(bicep.resource(n)["name"]) for n in bicep.of_type("Microsoft.KeyVault/vaults/secrets")
    }
    assert secrets == {"seer-training-key", "seer-prediction-key", "seer-smtp-password"}
    # Key Vault references resolve with the app's user-assigned identity, which holds Key Vault Secrets User.
    assert "functionsIdentity" in json.dumps(function_app["properties"]["keyVaultReferenceIdentity"])
    assert "functionsIdentity" in json.dumps(function_app["identity"]["userAssignedIdentities"])
    assert role_holders(bicep, "key vault secrets user") >= {"functionsIdentity", "trainingIdentity"}


def test_every_seer_setting_is_a_real_setting(bicep: Bicep, app_settings: dict, job_container: dict) -> None:
    # A field is read as SEER_<NAME>, or under its aliases only (SEER_DATA__accountName, AzureWebJobsStorage).
    fields = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        fields |= set(alias.choices) if isinstance(alias, AliasChoices) else {f"SEER_{name.upper()}"}
    env = settings_list(bicep, job_container["env"])
    used = {name for name in [*app_settings, *env] if name.startswith("SEER_") and "__" not in name}
    assert used, "no SEER_ settings at all"
    assert used <= fields, f"settings pipeline.core.settings does not read: {sorted(used - fields)}"
    # The data account's identity-based settings (issue 12): these names, nothing else.
    data = {name for name in [*app_settings, *env] if name.startswith("SEER_DATA__")}
    allowed = {
        "accountName",
        "blobServiceUri",
        "queueServiceUri",
        "tableServiceUri",
        "clientId",
        "credential",
    }
    assert {name.removeprefix("SEER_DATA__") for name in data} <= allowed
    for settings in (app_settings, env):
        assert {"SEER_DATA__accountName", "SEER_DATA__clientId"} <= settings.keys()
    # Settings both sides read must agree.
    for name in app_settings.keys() & env.keys() - {"SEER_DATA__clientId"}:  # each its own identity
        if name.startswith("SEER_"):
            assert bicep.resolve(app_settings[name]["value"]) == bicep.resolve(env[name]["value"]), name


def test_training_job_is_a_queue_triggered_container_apps_job(
    bicep: Bicep, job: dict, job_container: dict
) -> None:
    config = job["properties"]["configuration"]
    assert config["triggerType"] == "Event"
    assert config["replicaRetryLimit"] == 0, "retries come from the queue's dequeue count"
    trigger = config["eventTriggerConfig"]
    assert trigger["parallelism"] == 1
    assert trigger["replicaCompletionCount"] == 1
    assert trigger["scale"]["minExecutions"] == 0
    assert bicep.resolve(trigger["scale"]["maxExecutions"]) >= 1
    (rule,) = trigger["scale"]["rules"]
    assert rule["type"] == "azure-queue"
    assert rule["metadata"]["queueLength"] == "1"
    # Messages held invisible by running executions must count, or new requests wait for them to finish.
    assert rule["metadata"]["queueLengthStrategy"] == "all"
    # KEDA reads the queue with the job's identity: no connection string, no secret.
    assert "auth" not in rule
    assert reference_of(bicep.resolve(rule["identity"])) == "trainingIdentity.id"
    assert bicep.resolve(rule["metadata"]["accountName"]) == bicep.resolve(
        bicep.resource("dataStorage")["name"]
    )

    # Long enough for the largest Advanced budget the API accepts.
    budget_hours = settings_default("max_advanced_budget_hours")
    assert bicep.resolve("maxAdvancedBudgetHours") == budget_hours
    timeout = bicep.resolve(config["replicaTimeout"])
    assert isinstance(timeout, int) and timeout > budget_hours * 3600

    # PyTorch on CPU: 4 vCPU / 8 GiB by default.
    resources = bicep.resolve(job_container["resources"])
    assert resources["cpu"] >= 4
    assert resources["memory"] == "8Gi"
    assert "command" not in job_container, "the image's CMD runs the job"

    env = settings_list(bicep, job_container["env"])
    assert "AzureWebJobsStorage" not in env
    client = bicep.resolve(env["SEER_DATA__clientId"]["value"])
    assert reference_of(client) == "trainingIdentity.properties.clientId"
    assert (
        "SEER_TRAINING_VISIBILITY_TIMEOUT_SECONDS" not in env
        or int(bicep.resolve(env["SEER_TRAINING_VISIBILITY_TIMEOUT_SECONDS"]["value"])) > 0
    )


def test_training_job_pulls_from_the_registry_with_its_identity(bicep: Bicep, job: dict) -> None:
    config = job["properties"]["configuration"]
    (registry,) = config["registries"]
    assert "passwordSecretRef" not in registry and "username" not in registry
    assert "trainingIdentity" in json.dumps(registry["identity"])
    assert "trainingIdentity" in json.dumps(bicep.resources["trainingJob"]["config"]["identity"])
    assert "acrpull" in {r for r in ROLE_IDS if "trainingIdentity" in role_holders(bicep, r)}
    for secret in job_secrets(bicep, job):
        assert "value" not in secret, "job secrets come from Key Vault"
        assert reference_of(secret["identity"]) == "trainingIdentity.id"
    depends = bicep.resources["trainingJob"]["config"].get("dependsOn") or []
    assert "trainingAcrPullRole" in depends and "trainingKeyVaultRole" in depends


# --- Training e-mail (SMTP): the training job sends it, when the deployment is given a server -------------------------

# What an operator passes to turn training mail on. The password is a stand-in, so the tests can look for it.
SMTP_PASSWORD = "stand-in-smtp-password-41d7"
MAIL_PARAMS = {
    "smtpHost": "smtp.example.com",
    "smtpFromAddress": "seer@example.com",
    "smtpUsername": "seer",
    "smtpPassword": SMTP_PASSWORD,
}


@pytest.fixture(scope="module")
def mail_bicep() -> Bicep:
    return Bicep(MAIN_BICEP, given=MAIL_PARAMS)


def job_env(bicep: Bicep) -> dict[str, Any]:
    job = bicep.resource("trainingJob")
    (container,) = job["properties"]["template"]["containers"]
    return settings_list(bicep, container["env"])


def app_setting_names(bicep: Bicep) -> set[str]:
    app = bicep.resource(bicep.one_of_type("Microsoft.Web/sites"))
    return set(settings_list(bicep, app["properties"]["siteConfig"]["appSettings"]))


def smtp_password_secret(bicep: Bicep) -> str:
    """The Key Vault secret resource that holds the secure parameter smtpPassword."""
    (name,) = [
        n
        for n in bicep.of_type("Microsoft.KeyVault/vaults/secrets")
        if bicep.resource(n)["properties"]["value"] == "smtpPassword"
    ]
    return name


def deployed(bicep: Bicep, resource: str) -> bool:
    condition = bicep.resources[resource]["config"].get("condition")
    return True if condition is None else bicep.resolve(condition)


def job_settings(bicep: Bicep, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings the training job reads from the plain SEER_SMTP_* values it gets (secrets left out)."""
    for name in [n for n in os.environ if n.upper().startswith("SEER_SMTP_")]:
        monkeypatch.delenv(name)
    for name, item in job_env(bicep).items():
        if name.startswith("SEER_SMTP_") and "value" in item:
            value = bicep.resolve(item["value"])
            assert isinstance(value, str), f"{name}: a container env value is a string, not {value!r}"
            monkeypatch.setenv(name, value)
    return Settings()


def test_training_mail_settings_are_real_settings(mail_bicep: Bicep, monkeypatch: pytest.MonkeyPatch) -> None:
    # A field is read as SEER_<NAME>, or under its aliases only (SEER_DATA__accountName, AzureWebJobsStorage).
    fields = set()
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        fields |= set(alias.choices) if isinstance(alias, AliasChoices) else {f"SEER_{name.upper()}"}
    smtp = {name for name in job_env(mail_bicep) if name.startswith("SEER_SMTP_")}
    assert smtp <= fields, f"settings pipeline.core.settings does not read: {sorted(smtp - fields)}"
    assert smtp == {
        "SEER_SMTP_HOST",
        "SEER_SMTP_PORT",
        "SEER_SMTP_FROM_ADDRESS",
        "SEER_SMTP_USERNAME",
        "SEER_SMTP_SECURITY",
        "SEER_SMTP_PASSWORD",
    }
    # The Functions app sends no mail.
    assert not {n for n in app_setting_names(mail_bicep) if n.startswith("SEER_SMTP_")}
    # The parameters' defaults and choices are the settings'.
    assert mail_bicep.params["smtpPort"]["default"] == settings_default("smtp_port")
    assert mail_bicep.params["smtpSecurity"]["default"] == settings_default("smtp_security")
    (allowed,) = [
        d["argument"] for d in mail_bicep.params["smtpSecurity"]["decorators"] if d["type"] == "allowed"
    ]
    assert set(allowed) == set(get_args(Settings.model_fields["smtp_security"].annotation))
    # What the job gets reads as the server it was given.
    settings = job_settings(mail_bicep, monkeypatch)
    assert settings.mail_configured
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_security) == (
        "smtp.example.com",
        587,
        "starttls",
    )
    assert (settings.smtp_from_address, settings.smtp_username) == ("seer@example.com", "seer")


def test_smtp_password_reaches_the_job_only_through_key_vault(mail_bicep: Bicep) -> None:
    assert mail_bicep.is_secure_param("smtpPassword")
    secret = smtp_password_secret(mail_bicep)
    assert deployed(mail_bicep, secret)
    env = job_env(mail_bicep)["SEER_SMTP_PASSWORD"]
    assert set(env) == {"name", "secretRef"}, "the password is a job secret reference, never a value"
    job = mail_bicep.resource("trainingJob")
    (job_secret,) = [s for s in job_secrets(mail_bicep, job) if s["name"] == env["secretRef"]]
    assert "value" not in job_secret
    assert reference_of(job_secret["keyVaultUrl"]) == f"{secret}.properties.secretUri"
    assert reference_of(job_secret["identity"]) == "trainingIdentity.id"
    # The password's value is in that Key Vault secret and nowhere else: no app setting, env value or output.
    holders = [
        name
        for name, resource in mail_bicep.resources.items()
        if SMTP_PASSWORD in json.dumps(mail_bicep.resolve(body(resource)), default=repr)
    ]
    assert holders == [secret]
    assert mail_bicep.resolve(mail_bicep.resource(secret)["properties"]["value"]) == SMTP_PASSWORD
    for name, output in mail_bicep.outputs.items():
        assert SMTP_PASSWORD not in json.dumps(mail_bicep.resolve(output["value"]), default=repr), name


def test_no_smtp_password_no_secret_and_no_login() -> None:
    bicep = Bicep(MAIN_BICEP, given={k: v for k, v in MAIL_PARAMS.items() if k != "smtpPassword"})
    assert not deployed(bicep, smtp_password_secret(bicep))
    env = job_env(bicep)
    assert "SEER_SMTP_HOST" in env and "SEER_SMTP_PASSWORD" not in env
    job = bicep.resource("trainingJob")
    assert job_secrets(bicep, job) == []


def test_no_smtp_host_no_mail(bicep: Bicep, monkeypatch: pytest.MonkeyPatch) -> None:
    """The defaults: no server, so the job gets no SEER_SMTP_* setting and sends no mail."""
    assert bicep.resolve("smtpHost") == ""
    env = job_env(bicep)
    assert "SEER_SMTP_HOST" not in env
    assert not {n for n in [*env, *app_setting_names(bicep)] if n.startswith("SEER_SMTP_")}
    assert not job_settings(bicep, monkeypatch).mail_configured
    assert not deployed(bicep, smtp_password_secret(bicep))


def test_gpu_profile_is_optional(bicep: Bicep, job: dict) -> None:
    assert bicep.resolve("trainingGpuWorkloadProfileType") == ""
    assert bicep.resolve(job["properties"]["workloadProfileName"]) == "Consumption"
    environment = bicep.resource(bicep.one_of_type("Microsoft.App/managedEnvironments"))
    profiles = bicep.resolve(environment["properties"]["workloadProfiles"])
    assert profiles == [{"name": "Consumption", "workloadProfileType": "Consumption"}]
    assert job_env(bicep)["SEER_TRAINING_DEVICE"]["value"] == "cpu"


def _image(bicep: Bicep, job_name: str) -> str:
    (container,) = bicep.resource(job_name)["properties"]["template"]["containers"]
    return bicep.resolve(container["image"])


def test_the_gpu_profile_trains_with_the_cuda_image_on_cuda() -> None:
    """On a GPU profile the training job runs the CUDA build of the image and must train on CUDA; exports stay on
    the CPU image and the Consumption profile."""
    images = {
        "trainingImage": "r.azurecr.io/seer-training:1",
        "trainingGpuImage": "r.azurecr.io/seer-training:1-cuda",
    }
    bicep = Bicep(MAIN_BICEP, given={"trainingGpuWorkloadProfileType": "Consumption-GPU-NC8as-T4", **images})
    job = bicep.resource("trainingJob")
    assert bicep.resolve(job["properties"]["workloadProfileName"]) == "gpu"
    environment = bicep.resource(bicep.one_of_type("Microsoft.App/managedEnvironments"))
    assert {"name": "gpu", "workloadProfileType": "Consumption-GPU-NC8as-T4"} in bicep.resolve(
        environment["properties"]["workloadProfiles"]
    )
    assert _image(bicep, "trainingJob") == images["trainingGpuImage"]
    assert job_env(bicep)["SEER_TRAINING_DEVICE"]["value"] == "cuda"
    assert _image(bicep, "exportJob") == images["trainingImage"]
    assert bicep.resolve(bicep.resource("exportJob")["properties"]["workloadProfileName"]) == "Consumption"

    cpu_only = Bicep(MAIN_BICEP, given=images)
    assert _image(cpu_only, "trainingJob") == _image(cpu_only, "exportJob") == images["trainingImage"]


def role_holders(bicep: Bicep, role: str) -> set[str]:
    """The identities (resource symbols) a role is assigned to."""
    role_id = ROLE_IDS[role]
    holders = set()
    for name in bicep.of_type("Microsoft.Authorization/roleAssignments"):
        config = bicep.resources[name]["config"]
        props = bicep.resource(name)["properties"]
        role_ref = props["roleDefinitionId"]["function"]["parameters"]["resource_name_1"]
        if "loop_type" in config:
            candidates = bicep.resolve(config["loop_type"]["detail"]["array_name"])
        else:
            candidates = [bicep.resolve(role_ref)]
        if role_id in candidates:
            holders.add(props["principalId"]["operator"]["operands"]["operand_1"])
    return holders


def test_role_assignments(bicep: Bicep) -> None:
    assignments = bicep.of_type("Microsoft.Authorization/roleAssignments")
    assert assignments
    for name in assignments:
        body = bicep.resource(name)
        guid = body["name"]["function"]
        assert guid["type"] == "guid", f"{name}: the name must be a deterministic guid()"
        assert len([p for p in guid["parameters"].values() if p is not None]) >= 3, name
        assert body["properties"]["principalType"] == "ServicePrincipal"
        assert body["properties"]["roleDefinitionId"]["function"]["type"] == "subscription_resource_id"
    # The app holds Blob Data Owner (what the blob trigger and the host's storage ask for; it includes everything
    # Contributor does, generateUserDelegationKey among it); the job holds Contributor.
    assert role_holders(bicep, "storage blob data owner") == {"functionsIdentity"}
    assert role_holders(bicep, "storage blob data contributor") == {"trainingIdentity"}
    for role in ("storage queue data contributor", "storage table data contributor"):
        assert role_holders(bicep, role) == {"functionsIdentity", "trainingIdentity"}, role


def test_outputs_the_api_endpoint(bicep: Bicep) -> None:
    endpoint = bicep.outputs["apiEndpoint"]
    assert endpoint["type"] == "string"
    assert endpoint["value"] == "https://${functionApp.properties.defaultHostName}"


def test_no_secret_literals_in_infra() -> None:
    patterns = {
        "storage key": re.compile(r"AccountKey=(?!\$\{)[^;'\"\s]+"),
        "SAS signature": re.compile(r"[?&]sig=[A-Za-z0-9%+/=]{16,}"),
        "instrumentation key": re.compile(r"InstrumentationKey=[0-9a-f-]{36}", re.I),
        "base64 key": re.compile(r"['\"][A-Za-z0-9+/]{43,}={0,2}['\"]"),
        "password": re.compile(r"password['\"]?\s*[:=]\s*['\"][^'\"$]+['\"]", re.I),
    }
    files = [p for p in INFRA.rglob("*") if p.is_file()]
    assert MAIN_BICEP in files
    for path in files:
        text = path.read_text()
        for label, pattern in patterns.items():
            assert not pattern.search(text), f"{path.relative_to(ROOT)} holds what looks like a {label}"


def test_parameters_file_names_real_parameters_and_no_secrets(bicep: Bicep) -> None:
    document = json.loads((INFRA / "main.parameters.json").read_text())
    assert document["$schema"].endswith("deploymentParameters.json#")
    for name in document["parameters"]:
        assert name in bicep.params, f"main.parameters.json sets unknown parameter {name}"
        assert not bicep.is_secure_param(name), f"main.parameters.json must not hold the secret {name}"
    for name, param in bicep.params.items():
        if bicep.is_secure_param(name):
            # Empty means "not given" (Bicep's secure-parameter-default rule allows it); anything else is a secret.
            assert param.get("default") in (None, ""), f"secure parameter {name} has a default"


@pytest.mark.parametrize(
    ("path", "declaration"),
    [
        (MAIN_BICEP, "module trainingJob 'modules/training-job.bicep'"),
        (MODULES / "training-job.bicep", "resource trainingJob 'Microsoft.App/jobs@"),
    ],
)
def test_parser_sees_a_broken_template(path: Path, declaration: str) -> None:
    """The checks above mean something only if the parser rejects what Bicep rejects."""
    text = path.read_text()
    assert declaration in text
    broken = text.replace(declaration, declaration.replace("'", "", 1), 1)
    with pytest.raises(Exception):  # noqa: B017 - lark raises several error types
        BicepParser().parse(text=broken)


def test_every_module_exists_parses_and_gets_its_parameters() -> None:
    main = BicepParser().parse(file_path=MAIN_BICEP)
    used = set()
    for name, module in main["modules"].items():
        path = INFRA / module["detail"]["path"]
        assert module["type"] == "local" and path.is_file(), f"module {name}: no file {path}"
        used.add(path)
        params = BicepParser().parse(file_path=path).get("parameters", {})
        passed = module["config"].get("params") or {}
        required = {p for p, param in params.items() if param.get("default") is None}
        assert required <= passed.keys(), f"module {name} is not passed {sorted(required - passed.keys())}"
        assert passed.keys() <= params.keys(), f"module {name} has no {sorted(passed.keys() - params.keys())}"
        for param, value in passed.items():
            takes_secret = (
                isinstance(value, str)
                and value in main["parameters"]
                and is_secure(main["parameters"][value])
            )
            assert is_secure(params[param]) or not takes_secret, (
                f"module {name}: {param} takes a secret, not @secure()"
            )
    assert used == set(MODULES.glob("*.bicep")), "a module file main.bicep does not call"


def test_module_references_name_the_resources_modules_declare(bicep: Bicep) -> None:
    """An `existing` reference has the symbol, type and API version of the resource it stands for, and its name."""
    assert bicep.references
    for symbol, reference in bicep.references:
        assert symbol in bicep.resources, f"{symbol} refers to a resource no module declares"
        declared = bicep.resources[symbol]
        assert (reference["type"], reference["api_version"]) == (declared["type"], declared["api_version"])
        assert bicep.resolve(reference["config"]["name"]) == bicep.resolve(declared["config"]["name"]), symbol


def test_app_and_job_deploy_after_the_roles_and_storage_they_use(bicep: Bicep) -> None:
    """Key Vault references, the registry pull, the blob trigger and the queue scaler work on first start."""
    for resource_type, needed in (
        (
            "Microsoft.Web/sites",
            {
                "functionsKeyVaultRole",
                "functionsStorageRoles",
                "functionsHostRolesAssigned",
                "deploymentContainer",
                "uploadsContainer",
            },
        ),
        ("Microsoft.EventGrid/systemTopics/eventSubscriptions", {"functionApp", "uploadsContainer"}),
        (
            "trainingJob",
            {
                "trainingAcrPullRole",
                "trainingKeyVaultRole",
                "trainingStorageRoles",
                "trainingQueue",
                "trainingPoisonQueue",
            },
        ),
        ("exportJob", {"trainingAcrPullRole", "trainingStorageRoles", "exportQueue", "exportPoisonQueue"}),
    ):
        name = resource_type if resource_type in bicep.resources else bicep.one_of_type(resource_type)
        depends = set(bicep.resource(name).get("dependsOn") or [])
        assert needed <= depends, f"{resource_type} can start before {sorted(needed - depends)}"


# --- What the Bicep compiler would refuse: undeclared names, unknown properties -----------------------------------------

BICEP_FILES = [MAIN_BICEP, *sorted(MODULES.glob("*.bicep"))]


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.name)
def test_every_name_is_declared(path: Path) -> None:
    assert undeclared_symbols(path.read_text()) == []


def test_an_undeclared_name_fails() -> None:
    """A misspelt parameter, a variable that was removed, an unknown resource in an interpolation or a key."""
    text = (MODULES / "functions.bicep").read_text()
    for old, new, name in (
        (
            "instanceCount: functionsAlwaysReadyInstances",
            "instanceCount: functionsAlwaysReady",
            "functionsAlwaysReady",
        ),
        ("value: trainingKeyReference", "value: trainingKeyRef", "trainingKeyRef"),
        ("SecretUri=${predictionKeyUri}", "SecretUri=${predictionKeyUrl}", "predictionKeyUrl"),
        ("'${functionsIdentity.id}': {}", "'${functionIdentity.id}': {}", "functionIdentity"),
        ("serverFarmId: functionsPlan.id", "serverFarmId: functionPlan.id", "functionPlan"),
    ):
        assert old in text, old
        assert undeclared_symbols(text.replace(old, new)) == [name]


def resource_properties(bicep: Bicep) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(symbol, type@version, body) of every resource the files declare or refer to."""
    for template in bicep.main.files():
        for symbol, resource in template.resources.items():
            yield symbol, f"{resource['type']}@{resource['api_version']}", body(resource)


def test_every_property_is_one_its_type_takes(bicep: Bicep) -> None:
    shapes = load_properties()
    unknown = [
        path
        for symbol, kind, resource in resource_properties(bicep)
        for path in unknown_properties(symbol, kind, resource, shapes, bicep.resolve)
    ]
    assert unknown == []
    assert {kind for _, kind, _ in resource_properties(bicep)} == shapes.keys(), (
        "keep the list to what is used"
    )


def test_a_misspelt_property_fails(bicep: Bicep) -> None:
    shapes = load_properties()
    storage = json.loads(json.dumps(bicep.resolve(bicep.resource("dataStorage")), default=str))
    kind = "Microsoft.Storage/storageAccounts@2023-05-01"
    assert unknown_properties("dataStorage", kind, storage, shapes, bicep.resolve) == []
    storage["properties"]["allowSharedKeyAcess"] = storage["properties"].pop("allowSharedKeyAccess")
    storage["properties"]["networkAcls"]["defaultActon"] = "Deny"
    assert unknown_properties("dataStorage", kind, storage, shapes, bicep.resolve) == [
        "dataStorage.properties.networkAcls.defaultActon",
        "dataStorage.properties.allowSharedKeyAcess",
    ]
    job = json.loads(json.dumps(bicep.resource("trainingJob"), default=str))
    job["properties"]["configuration"]["eventTriggerConfig"]["scale"]["rules"][0]["identty"] = "x"
    assert unknown_properties("trainingJob", "Microsoft.App/jobs@2025-01-01", job, shapes, bicep.resolve) == [
        "trainingJob.properties.configuration.eventTriggerConfig.scale.rules[0].identty"
    ]
    assert unknown_properties(
        "x", "Microsoft.Storage/storageAccounts@2099-01-01", {}, shapes, bicep.resolve
    ) == ["x: Microsoft.Storage/storageAccounts@2099-01-01 is not in bicep_properties.json"]


def test_every_checkov_skip_is_listed_with_its_reason() -> None:
    """scripts/check-infra.sh fails on any failed check; each skipped one is in infra/README.md."""
    readme = (INFRA / "README.md").read_text()
    skips = [
        (path.name, match.group(1))
        for path in BICEP_FILES
        for match in re.finditer(r"//\s*checkov:skip=(CKV_\w+):\s*\S", path.read_text())
    ]
    assert skips, "no skips: update infra/README.md's checkov section"
    for file, check in skips:
        assert re.search(rf"\|\s*`{check}`\s*\|[^\n]*`{file}`", readme), (
            f"{check} in {file} is not in infra/README.md"
        )


# --- Dockerfile and .dockerignore -------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def image_layout() -> tuple[
    dict[PurePosixPath, Path], list[tuple[PurePosixPath, str, dict[PurePosixPath, Path]]]
]:
    """Replay WORKDIR/COPY: image path -> repository path for every file copied; and the RUN lines in order."""
    workdir = PurePosixPath("/")
    files: dict[PurePosixPath, Path] = {}
    runs = []
    for keyword, rest in dockerfile_instructions():
        if keyword == "WORKDIR":
            workdir = workdir / rest
        elif keyword == "COPY":
            *sources, dest = [a for a in shlex.split(rest) if not a.startswith("--")]
            target = workdir / dest
            for source in sources:
                path = ROOT / source
                assert path.exists(), f"COPY {source}: no such path in the repository"
                if path.is_dir():
                    for file in path.rglob("*"):
                        if file.is_file():
                            files[target / file.relative_to(path).as_posix()] = file
                else:
                    files[target if not dest.endswith("/") else target / path.name] = path
        elif keyword == "RUN":
            runs.append((workdir, rest, dict(files)))
    return files, runs


def test_dockerfile_base_user_and_command() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert froms == ["python:3.11-slim"]
    (cmd,) = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert json.loads(cmd) == ["python", "-m", "training_job"]
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    assert (ROOT / "training_job" / "__main__.py").is_file()


def test_dockerfile_copies_only_pipeline_training_job_and_requirements() -> None:
    files, _ = image_layout()
    sources = {p.relative_to(ROOT).parts[0] for p in files.values()}
    assert sources == {"pipeline", "training_job", "requirements.txt"}
    # of pipeline/, only the layers the training job imports (tests/test_training_job_imports.py)
    layers = {
        p.relative_to(ROOT).parts[1] for p in files.values() if p.relative_to(ROOT).parts[0] == "pipeline"
    }
    assert layers == {"__init__.py", "core", "contract", "vision", "store"}
    assert PurePosixPath("/app/pipeline/core/settings.py") in files
    assert PurePosixPath("/app/training_job/job.py") in files


def follow_requirements(image_file: PurePosixPath, files: dict[PurePosixPath, Path], seen: set) -> None:
    assert image_file in files, f"{image_file} is not in the image when pip reads it"
    seen.add(image_file)
    for line in files[image_file].read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in ("-r", "--requirement"):
            # pip resolves a nested requirements path against the directory of the file that names it.
            nested = PurePosixPath(*_normalise((image_file.parent / parts[1]).parts))
            follow_requirements(nested, files, seen)


def _normalise(parts: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part == "..":
            out.pop()
        elif part != ".":
            out.append(part)
    return out


def test_dockerfile_requirements_resolve_inside_the_image() -> None:
    _, runs = image_layout()
    installs = [(workdir, line, files) for workdir, line, files in runs if "pip install" in line]
    assert installs, "the Dockerfile installs nothing"
    seen: set = set()
    for workdir, line, files in installs:
        words = shlex.split(line)
        for i, word in enumerate(words):
            if word in ("-r", "--requirement"):
                path = PurePosixPath(*_normalise((workdir / words[i + 1]).parts))
                follow_requirements(path, files, seen)
    # one image runs both jobs: the export job's converters, the training job's torch, the service's storage layer
    assert PurePosixPath("/app/training_job/requirements-export.txt") in seen
    assert PurePosixPath("/app/training_job/requirements.txt") in seen
    assert PurePosixPath("/app/requirements.txt") in seen, (
        "training_job/requirements.txt includes ../requirements.txt"
    )
    text = DOCKERFILE.read_text()
    assert "ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu" in text
    assert re.search(r"--extra-index-url \"?\$\{?TORCH_INDEX_URL", text)


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parent folders decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        body = body.strip("/")
        regex = "".join(
            ".*"
            if token == "**"
            else "[^/]*"
            if token == "*"
            else "[^/]"
            if token == "?"
            else re.escape(token)
            for token in re.split(r"(\*\*|\*|\?)", body)
        )
        regex = regex.replace(".*/", "(?:.*/)?")
        if any(re.fullmatch(regex, candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def test_dockerignore_keeps_the_context_small_but_complete() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        ".venv/lib/python3.11/site-packages/torch/__init__.py",
        "node_modules/azurite/package.json",
        "tests/test_infra.py",
        "bench/ingest.py",
        ".git/HEAD",
        "pipeline/__pycache__/settings.cpython-311.pyc",
        ".pytest_cache/v/cache/nodeids",
        ".ruff_cache/CACHEDIR.TAG",
        "infra/main.bicep",
        "pipeline/api/app.py",
        "pipeline/services/training.py",
        "pipeline/portal/router.py",
        "pipeline/triggers.py",
    ):
        assert dockerignore_excludes(path, patterns), f"{path} would be sent to the builder"
    files, _ = image_layout()
    for source in files.values():
        relative = source.relative_to(ROOT).as_posix()
        if "__pycache__" not in relative:
            assert not dockerignore_excludes(relative, patterns), f"{relative} is copied but ignored"
