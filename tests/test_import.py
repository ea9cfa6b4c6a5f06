"""The core imports no deep-learning framework, even after the plugins are collected."""

import subprocess
import sys

HEAVY = ("torch", "tensorflow", "keras", "onnx", "onnxruntime", "captum", "tf_keras")


def _imported_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_import_interpkit_is_light():
    assert _imported_after("import interpkit") == []


def test_plugin_discovery_is_light():
    # Registering every installed plugin (torch, keras, onnx backends included) must not import them.
    assert _imported_after("import interpkit; interpkit.get_registry(); import interpkit.cli") == []
