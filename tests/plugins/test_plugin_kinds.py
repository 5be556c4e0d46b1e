"""Kinds from outside audiorec: import targets and entry points, checked at plan time like built-in kinds."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from audiorec.backbones import BACKBONES, BackboneTraits
from audiorec.common.registry import PluginHooks, Registry
from audiorec.errors import ParameterError
from audiorec.plan import Plan
from audiorec.recommenders import RECOMMENDERS

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "plugins" / "src"
TINY = REPO / ".test" / "config_tiny" / "config.yaml"


def tiny_config(**changes: dict) -> dict:
    from snakemake.utils import validate

    config = yaml.safe_load(TINY.read_text())
    config["models"] = {"knn": {"kind": "knn"}, "popularity": {"kind": "popularity"}}
    for section, entries in changes.items():
        config[section].update(entries)
    validate(config, str(REPO / "config" / "schema.yaml"))
    return config


def test_a_class_named_by_import_target_is_a_backbone_kind_with_its_declared_traits_and_options():
    kind = "plugin_fixtures:EnvelopeBackbone"
    assert kind in BACKBONES and BACKBONES.is_plugin(kind) and not BACKBONES.is_plugin("mfcc")
    assert BACKBONES.traits(kind) == BackboneTraits(uses_gpu=False)
    assert BACKBONES.check_options(kind, {"width": 4}, "backbones.env.options").width == 4
    with pytest.raises(ParameterError, match=r"backbones.env.options: backbone plugin_fixtures:Envel.*\['widht'\]"):
        BACKBONES.check_options(kind, {"widht": 4}, "backbones.env.options")


def test_a_plan_with_plugin_kinds_checks_their_options_and_records_their_code():
    config = tiny_config(
        backbones={"env": {"kind": "plugin_fixtures:EnvelopeBackbone", "options": {"width": 5}}},
        models={"most_heard": {"kind": "plugin_fixtures:MostHeardRecommender"}},
    )
    plan = Plan.from_config(config)
    plan.check()
    code = plan.backbones["env"].spec["code"]
    assert code["target"] == "plugin_fixtures:EnvelopeBackbone" and len(code["sources_sha256"]) == 64
    assert plan.models["most_heard"].spec["code"]["target"] == "plugin_fixtures:MostHeardRecommender"
    assert "code" not in plan.backbones["mfcc"].spec and "code" not in plan.models["knn"].spec
    config["backbones"]["env"]["options"] = {"widht": 5}
    with pytest.raises(ParameterError, match=r"backbones.env.options: .*unknown option\(s\) \['widht'\]"):
        Plan.from_config(config)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("no_such_package.models:Model", "cannot import no_such_package.models: ModuleNotFoundError"),
        ("plugin_fixtures:Missing", "module plugin_fixtures has no attribute 'Missing'"),
        ("plugin_fixtures:NoOptionsClassBackbone", "declares no options_class dataclass"),
        ("plugin_fixtures:np", "plugin_fixtures:np is neither a class nor a Registered descriptor"),
        ("not_a_kind", r"unknown backbone kind 'not_a_kind'; known kinds are \[.*\] \(or an import target"),
    ],
)
def test_a_plugin_that_cannot_be_resolved_fails_the_plan_in_one_line_naming_it(kind, message):
    config = tiny_config(backbones={"bad": {"kind": kind}})
    with pytest.raises(ParameterError, match=message) as error:
        Plan.from_config(config)
    assert "\n" not in str(error.value) and "backbones.bad" in str(error.value)


def test_a_class_that_is_no_backbone_or_recommender_is_refused_when_loaded():
    with pytest.raises(ParameterError, match=r"NotABackbone'> is not a subclass of audiorec\.backbones\.Backbone"):
        BACKBONES.load("plugin_fixtures:NotABackbone")
    with pytest.raises(ParameterError, match=r"is not a subclass of audiorec\.recommenders\.Recommender"):
        RECOMMENDERS.load("plugin_fixtures:NotABackbone")


def test_a_descriptor_whose_implementation_is_missing_plans_but_its_job_fails_in_one_line():
    kind = "plugin_fixtures:MISSING_IMPLEMENTATION"
    Plan.from_config(tiny_config(models={"missing": {"kind": kind}})).check()
    with pytest.raises(
        ParameterError,
        match="model kind 'plugin_fixtures:MISSING_IMPLEMENTATION': module "
        "plugin_fixtures has no attribute 'NoSuchRecommender'",
    ):
        RECOMMENDERS.load(kind)


def test_a_plugin_class_gets_its_own_kind_and_its_traits():
    narrow = BACKBONES.load("plugin_fixtures:NarrowBackbone")
    assert narrow.kind == "plugin_fixtures:NarrowBackbone"
    model = RECOMMENDERS.load("plugin_fixtures:MostHeardRecommender")
    assert model.kind == "plugin_fixtures:MostHeardRecommender" and model.trained is False


def write_distribution(site: Path, name: str, version: str, entry_points: str) -> None:
    """An installed distribution as importlib.metadata sees one: a dist-info folder on sys.path."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(entry_points)


def fresh_backbone_registry() -> Registry:
    """A registry with no cache: what a new Snakemake process would resolve."""
    hooks = BACKBONES.plugins
    return Registry("backbone", BACKBONES.entries, PluginHooks(hooks.group, hooks.traits_of, hooks.prepare))


def test_an_entry_point_name_is_a_kind_and_its_version_and_sources_identify_its_code(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "my_plugin").mkdir(parents=True)
    source = (REPO / "tests" / "plugin_fixtures.py").read_text()
    (site / "my_plugin" / "__init__.py").write_text(source)
    write_distribution(site, "my-plugin", "1.2.0", "[audiorec.backbones]\nenvelope = my_plugin:EnvelopeBackbone\n")
    monkeypatch.syspath_prepend(str(site))
    registry = fresh_backbone_registry()
    assert "envelope" in registry and registry.traits("envelope") == BackboneTraits()
    first = registry.code_version("envelope")
    assert first["package"] == "my-plugin==1.2.0" and first["target"] == "my_plugin:EnvelopeBackbone"
    assert registry.load("envelope").kind == "envelope"
    (site / "my_plugin" / "__init__.py").write_text(source + "\n# an edit\n")
    assert fresh_backbone_registry().code_version("envelope")["sources_sha256"] != first["sources_sha256"]


def test_a_built_in_name_is_never_shadowed_by_an_entry_point(tmp_path, monkeypatch):
    write_distribution(tmp_path, "shadow", "1.0", "[audiorec.backbones]\nmfcc = plugin_fixtures:EnvelopeBackbone\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert fresh_backbone_registry()["mfcc"] is BACKBONES.entries["mfcc"]


def test_planning_descriptor_plugins_imports_neither_torch_nor_their_models():
    code = f"""
    import sys
    sys.path.insert(0, {str(EXAMPLE)!r})
    import yaml
    from snakemake.utils import validate
    from audiorec.plan import Plan
    config = yaml.safe_load(open({str(TINY)!r}))
    config["backbones"]["cnn"] = {{"kind": "audiorec_example.plugin:TINY_CNN", "options": {{"n_mels": 16}}}}
    config["models"]["walk"] = {{"kind": "audiorec_example.plugin:RP3BETA", "options": {{"beta": 0.3}}}}
    validate(config, {str(REPO / "config" / "schema.yaml")!r})
    plan = Plan.from_config(config)
    plan.check()
    print(plan.backbones["cnn"].spec["code"]["target"], plan.models["walk"].traits.trained)
    print("HEAVY", [m for m in ("torch", "librosa", "audiorec_example.backbone", "audiorec_example.rp3beta")
                    if m in sys.modules])
    """
    process = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert "audiorec_example.plugin:TINY_CNN False" in process.stdout
    assert "HEAVY []" in process.stdout
