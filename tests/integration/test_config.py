"""Importing fraudrisk in a fresh interpreter has no side effects."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_import_has_no_side_effects_and_settings_are_built_lazily():
    code = (
        "import os; os.environ['FRAUDRISK_KAFKA__PARTITIONS'] = 'zero'\n"
        "import fraudrisk.config, fraudrisk.cli.main\n"
        "print('imported')\n"
        "fraudrisk.config.get_settings()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "imported"
    assert done.returncode != 0 and "partitions" in done.stderr
