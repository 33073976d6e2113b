import subprocess
import sys


def test_core_and_theory_do_not_import_torch():
    code = "import sys, tsallis, tsallis.core, tsallis.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
