"""Per-rule software environments (envs/, used with `snakemake --sdm conda`): every rule that runs code names one,
each file is a valid, pinned conda environment, and each installs the audiorec package itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
ENVS = REPO / "envs"
CONFIGS = [REPO / "config" / "config.yaml", *sorted((REPO / "config" / "examples").glob("*.yaml"))]

KEY_PACKAGES = {
    "tables": {
        "numpy",
        "scipy",
        "numba",
        "polars",
        "pyarrow",
        "scikit-learn",
        "matplotlib",
        "pyyaml",
        "jsonschema",
        "tqdm",
    },
    "torch": {"torch", "numpy", "polars", "pyarrow", "librosa", "soundfile", "soxr", "transformers", "safetensors"},
    "download": {"huggingface-hub", "numpy", "polars", "pyarrow", "pyyaml", "tqdm"},
}
"""Packages each environment must pin; the rules on it import them."""

NO_TORCH = {"torch", "transformers", "librosa", "audiomentations", "pedalboard"}

LOAD_RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, ResourceSettings

repo, configs = Path(sys.argv[1]), sys.argv[2:]
rules = {}
for config in configs:
    with SnakemakeApi() as api:
        workflow = api.workflow(
            resource_settings=ResourceSettings(),
            config_settings=ConfigSettings(configfiles=[Path(config)], replace_workflow_config=True),
            snakefile=repo / "Snakefile",
            workdir=repo,
        )._workflow
        for rule in workflow.rules:
            rules[rule.name] = {
                "snakefile": str(rule.snakefile),
                "conda": None if rule.conda_env is None else str(rule.conda_env),
                "runs_code": not rule.norun,
                "run_block": bool(rule.is_run),
                "gpu": "gpu" in rule.resources,
            }
print("RULES" + json.dumps(rules))
"""


@pytest.fixture(scope="module")
def rules() -> dict[str, dict]:
    """Every rule the workflow defines under the default config or any example config (rules depend on the config:
    a fetch checkpoint per dataset source, precomputed backbones, published weights)."""
    process = subprocess.run(
        [sys.executable, "-c", LOAD_RULES, str(REPO), *map(str, CONFIGS)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in process.stdout.splitlines() if line.startswith("RULES")]
    assert process.returncode == 0 and lines, process.stdout + process.stderr
    return json.loads(lines[-1].removeprefix("RULES"))


def env_file(rule: dict) -> Path:
    """The environment file a rule names, resolved as Snakemake does: relative to the file defining the rule."""
    return (Path(rule["snakefile"]).parent / rule["conda"]).resolve()


def load_env(name: str) -> dict:
    return yaml.safe_load((ENVS / f"{name}.yaml").read_text())


def pip_pins(env: dict) -> dict[str, Requirement]:
    """The environment's pip requirements by normalised name; option lines (an extra index) are left out."""
    [pip] = [entry["pip"] for entry in env["dependencies"] if isinstance(entry, dict)]
    requirements = [Requirement(line) for line in pip if not line.startswith("-")]
    return {re.sub(r"[-_.]+", "-", req.name).lower(): req for req in requirements}


def pinned_version(requirement: Requirement) -> Version:
    [specifier] = requirement.specifier
    assert specifier.operator == "==", f"{requirement} is not pinned to one version"
    return Version(specifier.version)


def test_the_rules_of_every_config_are_loaded(rules):
    """A rule defined in a .smk file but run by no config would escape the checks below."""
    defined = set()
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        defined |= set(re.findall(r"^\s*(?:rule|checkpoint)\s+(\w+)\s*:", path.read_text(), re.MULTILINE))
    assert defined and defined <= set(rules), defined - set(rules)
    assert any(name.startswith("fetch_") for name in rules), "the fetch checkpoints are named in a loop"


def test_every_rule_that_runs_code_names_an_existing_environment_file(rules):
    running = {name: rule for name, rule in rules.items() if rule["runs_code"]}
    assert len(running) >= 20
    missing = sorted(name for name, rule in running.items() if rule["conda"] is None)
    assert not missing, f"rules without a conda: environment: {missing}"
    for name, rule in running.items():
        path = env_file(rule)
        assert path.is_file(), f"rule {name} names {rule['conda']}, which does not exist"
        assert path.parent == ENVS and path.suffix == ".yaml", f"rule {name}: {path} is not in envs/"


def test_no_rule_runs_a_run_block(rules):
    """`run:` blocks execute inside Snakemake's own process, where `--sdm conda` cannot put an environment."""
    assert not [name for name, rule in rules.items() if rule["run_block"]]


def test_rules_that_may_use_a_gpu_run_in_the_torch_environment(rules):
    gpu_rules = {name: rule for name, rule in rules.items() if rule["gpu"]}
    assert {"embed_shard", "ssl_train", "recommend", "train_recommender"} <= set(gpu_rules)
    assert {env_file(rule).stem for rule in gpu_rules.values()} == {"torch"}
    for name in ("embed_gather", "recommend_new_items", "layer_sweep", "ssl_train_tracks"):
        assert env_file(rules[name]).stem == "torch", f"{name} imports torch"
    assert {env_file(rules[name]).stem for name in ("download", "download_weights") if name in rules} == {"download"}
    assert env_file(rules["aggregate"]).stem == "tables"


@pytest.mark.parametrize("name", sorted(KEY_PACKAGES))
def test_an_environment_file_is_a_conda_environment_pinning_its_key_packages(name):
    env = load_env(name)
    assert env["name"] == f"audiorec-{name}"
    assert env["channels"] and "defaults" not in env["channels"]
    conda = [entry for entry in env["dependencies"] if isinstance(entry, str)]
    assert "python=3.11" in conda and "pip" in conda
    pins = pip_pins(env)
    assert KEY_PACKAGES[name] <= set(pins), KEY_PACKAGES[name] - set(pins)
    for requirement in pins.values():
        pinned_version(requirement)


def test_pins_meet_the_package_requirements_and_agree_across_environments():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    python = project["requires-python"]
    assert Version("3.11") in Requirement(f"python{python}").specifier
    required = {re.sub(r"[-_.]+", "-", req.name).lower(): req for req in map(Requirement, project["dependencies"])}
    versions: dict[str, Version] = {}
    for name in KEY_PACKAGES:
        for package, requirement in pip_pins(load_env(name)).items():
            version = pinned_version(requirement)
            if package in required:
                assert required[package].specifier.contains(version), f"{name}: {requirement} vs {required[package]}"
            assert versions.setdefault(package, version) == version, f"{package} pinned differently across envs"


def test_the_torch_environment_runs_every_part_of_the_package_on_torchs_cpu_build():
    env = load_env("torch")
    pins = pip_pins(env)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    needed = {re.sub(r"[-_.]+", "-", Requirement(dep).name).lower() for dep in project["dependencies"]}
    assert needed - {"snakemake"} <= set(pins), needed - {"snakemake"} - set(pins)
    assert str(pins["torch"].specifier) == "==2.13.0+cpu"
    [pip] = [entry["pip"] for entry in env["dependencies"] if isinstance(entry, dict)]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in pip


@pytest.mark.parametrize("name", ["tables", "download"])
def test_the_light_environments_leave_torch_out(name):
    assert not NO_TORCH & set(pip_pins(load_env(name)))


def fake_python(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose `python` records its arguments instead of installing anything."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    (bin_dir / "python").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "python").chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key != "AUDIOREC_SOURCE"}
    return env | {"PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}, calls


@pytest.mark.parametrize("name", sorted(KEY_PACKAGES))
def test_every_environment_installs_the_package_from_the_checkout(name, tmp_path):
    """Snakemake runs envs/<name>.post-deploy.sh in the new environment, from its working directory."""
    script = ENVS / f"{name}.post-deploy.sh"
    assert script.read_text() == (ENVS / "tables.post-deploy.sh").read_text()
    env, calls = fake_python(tmp_path)

    def post_deploy(cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(script)], cwd=cwd, env=env | extra, capture_output=True, text=True, check=False
        )

    done = post_deploy(REPO)
    assert done.returncode == 0, done.stderr
    assert calls.read_text().split() == ["-m", "pip", "install", "--no-deps", "--editable", str(REPO)]

    calls.unlink()
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    refused = post_deploy(elsewhere)
    assert refused.returncode != 0 and "AUDIOREC_SOURCE" in refused.stderr and not calls.exists()
    assert post_deploy(elsewhere, AUDIOREC_SOURCE=str(REPO)).returncode == 0
    assert calls.read_text().split()[-1] == str(REPO)


def test_the_readme_documents_the_environments():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Software environments", 1)[1].split("\n## ", 1)[0]
    for name in KEY_PACKAGES:
        assert f"envs/{name}.yaml" in section
    assert "--sdm conda" in section and "post-deploy" in section
